output "containers" {
  description = "Managed containers (runner excluded), hostname => {vmid, ip}."
  value = {
    for hostname, ct in terraform_data.container : hostname => { vmid = ct.output.vmid, ip = ct.output.ip }
  }
}

output "runner" {
  description = "The CI runner container as {hostname, vmid, ip}, or null when off-inventory."
  value       = var.runner == null ? null : { hostname = var.runner.hostname, vmid = var.runner.vmid, ip = var.runner.ip }
}
