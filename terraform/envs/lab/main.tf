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
}

resource "terraform_data" "container" {
  for_each = var.containers

  input = merge(local.common, each.value, { node = coalesce(each.value.node, var.node) })

  # What PVE cannot change in place on a container: a new value means a new container.
  triggers_replace = {
    node     = coalesce(each.value.node, var.node)
    vmid     = each.value.vmid
    hostname = each.value.hostname
    ip       = each.value.ip
  }

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

  input = merge(local.common, var.runner, { node = coalesce(var.runner.node, var.node) })

  triggers_replace = {
    node     = coalesce(var.runner.node, var.node)
    vmid     = var.runner.vmid
    hostname = var.runner.hostname
    ip       = var.runner.ip
  }

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
