# One Proxmox LXC container. The caller iterates (for_each keyed by hostname), so plan
# addresses read module.container["<hostname>"].proxmox_lxc.this.

resource "proxmox_lxc" "this" {
  target_node     = coalesce(var.container.node, var.node)
  vmid            = var.container.vmid
  hostname        = var.container.hostname
  ostemplate      = var.ostemplate
  unprivileged    = true
  memory          = var.container.memory
  cores           = var.container.cores
  ssh_public_keys = var.ssh_public_keys
  tags            = join(";", sort(var.container.tags))
  protection      = var.container.protected
  start           = true
  onboot          = true

  rootfs {
    # the inventory's `storage:` (an HA host's is shared, so the HA manager can start it on another node)
    storage = coalesce(var.container.storage, var.rootfs_storage)
    size    = var.rootfs_size
  }

  network {
    name   = "eth0"
    bridge = var.bridge
    ip     = "${var.container.ip}/${var.container.prefix_length}"
    gw     = var.gateway
    # PVE filters a container's traffic only on an interface with firewall=1 (the rules: the deploy's firewall stage)
    firewall = true
  }

  lifecycle {
    # Incident #4: PVE reports keys and tags differently from what was sent (keys are
    # not read back, tags come back sorted), so without this every apply planned a
    # replacement of every container.
    ignore_changes = [ssh_public_keys, tags]
  }
}
