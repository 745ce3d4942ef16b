"""The Ansible inventory the deploy runs site.yml with: the inventory's hosts and groups, and what each host runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.stack.hostvars import host_vars

if TYPE_CHECKING:
    from plugins.inventory import Inventory


def ansible_inventory(inventory: Inventory) -> dict:
    """Ansible YAML/JSON inventory: all.hosts with host vars (the stack's among them), a group per role, `runner`."""
    order = inventory.roles
    hostvars = {
        h.hostname: {
            "ansible_host": h.ip,
            "vmid": h.vmid,
            "protected": h.protected,
            "rollback": h.rollback,
            "packages": list(h.packages),
            "containers": list(h.containers),
            # site.yml applies these, in this order (the inventory's order of roles)
            "host_roles": [role for role in order if role in h.roles],
            **host_vars(inventory, h),
        }
        for h in inventory.hosts
    }
    children = {role: {"hosts": {h.hostname: {} for h in inventory.hosts_with_role(role)}} for role in inventory.roles}
    if inventory.runner_host:
        children["runner"] = {"hosts": {inventory.runner_host.hostname: {}}}
    return {
        "all": {
            "vars": {
                "ansible_ssh_private_key_file": inventory.runner.deploy_key,
                "deploy_user": inventory.runner.deploy_user,
            },
            "hosts": hostvars,
            "children": children,
        }
    }
