"""Proxmox VE: the one API client (client), its errors and task waiting that checks exitstatus (tasks),
and the snapshot policy (snapshots: PVE's name rule, deploy_<run id>, what to prune)."""
