# The owner's Proxmox node. Connection settings come from the environment
# (PM_API_URL, PM_API_TOKEN_ID, PM_API_TOKEN_SECRET), never from a file of the repo.
provider "proxmox" {
  pm_tls_insecure = false
}

module "container" {
  source   = "../../modules/lxc_container"
  for_each = var.containers

  node            = var.node
  ostemplate      = var.ostemplate
  bridge          = var.bridge
  gateway         = var.gateway
  ssh_public_keys = var.ssh_public_keys
  container       = each.value
}

# The runner is a direct resource, not a module instance: a module block cannot carry
# lifecycle.prevent_destroy, and destroying the runner kills the deploy itself (#7).
resource "proxmox_lxc" "ci_runner" {
  count = var.runner == null ? 0 : 1

  target_node     = coalesce(var.runner.node, var.node)
  vmid            = var.runner.vmid
  hostname        = var.runner.hostname
  ostemplate      = var.ostemplate
  unprivileged    = true
  memory          = var.runner.memory
  cores           = var.runner.cores
  ssh_public_keys = var.ssh_public_keys
  tags            = join(";", sort(var.runner.tags))
  protection      = true
  start           = true
  onboot          = true

  rootfs {
    storage = coalesce(var.runner.storage, "local-lvm")
    size    = "8G"
  }

  network {
    name   = "eth0"
    bridge = var.bridge
    ip     = "${var.runner.ip}/${var.runner.prefix_length}"
    gw     = var.gateway
    # PVE filters a container's traffic only on an interface with firewall=1 (the rules: the deploy's firewall stage)
    firewall = true
  }

  lifecycle {
    prevent_destroy = true
    ignore_changes  = all
  }
}
