output "vmid" {
  description = "VMID of the container."
  value       = proxmox_lxc.this.vmid
}

output "ip" {
  description = "IPv4 address of the container (without prefix length)."
  value       = var.container.ip
}

output "hostname" {
  description = "Hostname of the container."
  value       = proxmox_lxc.this.hostname
}
