"""Proxmox VE API emulator for the embedded lab (HTTPS, API tokens, tasks with UPIDs)."""
