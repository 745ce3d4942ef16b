# The lab has no Proxmox provider (providers cannot be downloaded here): each container
# is a terraform_data whose provisioners drive the emulated PVE API through pve_lxc.py.
# The helper reads the API's URL, token and CA from PVE_API_URL, PVE_TOKEN_ID,
# PVE_TOKEN_SECRET and PVE_CA_FILE in Terraform's environment, never from a file here.
# Provisioners get the container only through self.input: destroy-time provisioners may not
# reference variables or locals, so both commands read the same PVE_LXC_SPEC.

locals {
  common = {
    ostemplate      = var.ostemplate
    bridge          = var.bridge
    gateway         = var.gateway
    ssh_public_keys = var.ssh_public_keys
  }
  # A container's rootfs storage rides in its input and triggers only when it is not PVE's `local`: a state
  # written before the inventory said where (every container on `local`) then plans no change.
  runner_storage = var.runner == null ? {} : { for k, v in { storage = var.runner.storage } : k => v if coalesce(v, "local") != "local" }
  storage = {
    for name, c in var.containers : name => { for k, v in { storage = c.storage } : k => v if coalesce(v, "local") != "local" }
  }
}

resource "terraform_data" "container" {
  for_each = var.containers

  input = merge(local.common, { for k, v in each.value : k => v if k != "storage" }, local.storage[each.key],
  { node = coalesce(each.value.node, var.node) })

  # What PVE cannot change in place on a container: a new value means a new container.
  triggers_replace = merge({
    node     = coalesce(each.value.node, var.node)
    vmid     = each.value.vmid
    hostname = each.value.hostname
    ip       = each.value.ip
  }, local.storage[each.key])

  provisioner "local-exec" {
    interpreter = ["python3", "${path.module}/pve_lxc.py"]
    command     = "create"
    environment = { PVE_LXC_SPEC = jsonencode(self.input) }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "${path.module}/pve_lxc.py"]
    command     = "destroy"
    environment = { PVE_LXC_SPEC = jsonencode(self.input) }
  }
}

# The runner is its own resource so that it can carry prevent_destroy: a plan that
# would destroy or replace it fails instead of killing the deploy that runs on it (#7).
resource "terraform_data" "ci_runner" {
  count = var.runner == null ? 0 : 1

  input = merge(local.common, { for k, v in var.runner : k => v if k != "storage" }, local.runner_storage,
  { node = coalesce(var.runner.node, var.node) })

  triggers_replace = merge({
    node     = coalesce(var.runner.node, var.node)
    vmid     = var.runner.vmid
    hostname = var.runner.hostname
    ip       = var.runner.ip
  }, local.runner_storage)

  provisioner "local-exec" {
    interpreter = ["python3", "${path.module}/pve_lxc.py"]
    command     = "create"
    environment = { PVE_LXC_SPEC = jsonencode(self.input) }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["python3", "${path.module}/pve_lxc.py"]
    command     = "destroy"
    environment = { PVE_LXC_SPEC = jsonencode(self.input) }
  }

  lifecycle {
    prevent_destroy = true
  }
}
