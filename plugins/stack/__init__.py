"""The stack: what the hosts run, rendered from the inventory (which it reads; the inventory never reads it).

hostvars (each host's containers, generated files and secrets' sources for the stack role; the proxy host's
Traefik configuration) from configs (each service's generated files, mapped to the host directory mounted over
them) and the renderers traefik (static and dynamic configuration), prometheus (scrape configuration and rules),
grafana (provisioning and dashboards), promtail (the log shipper's configuration); ansible (the Ansible inventory
site.yml runs with); cli (`python -m plugins.stack ansible`). What these read of a declaration (a mount, an
entrypoint, a first port) is data in plugins/inventory/stack_needs.py, which the inventory's rules check.
"""

from plugins.stack.ansible import ansible_inventory
from plugins.stack.hostvars import container_vars, host_vars

__all__ = ["ansible_inventory", "container_vars", "host_vars"]
