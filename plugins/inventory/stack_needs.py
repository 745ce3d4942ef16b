"""What the stack's generated configuration reads of the declarations, as data: the rules check it, plugins/stack
renders from it.

A declaration the inventory runs must give what its generated files need: the proxy its named entrypoints and its
configuration directory, a service with generated files a host directory over each, a service whose first port
another's configuration names that port, published. Written here once, so validation never imports a renderer.
"""

from __future__ import annotations

PROXY_SERVICE = "traefik"  # the catalog's reverse proxy: its host routes every declared route
PROXY_CONFIG_TARGET = "/etc/traefik"  # where the traefik declaration mounts its configuration directory
PROXY_ENTRYPOINTS = ("web", "websecure", "traefik")  # port names the traefik declaration must give

PROMETHEUS_CONFIG_TARGET = "/etc/prometheus"  # where services/prometheus.yml mounts its configuration directory
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"  # GF_PATHS_PROVISIONING's default in the official image
GRAFANA_DASHBOARDS = "/etc/grafana/dashboards"  # where Grafana's dashboard provider reads the JSON from
PROMTAIL_CONFIG_TARGET = "/etc/promtail"  # where services/promtail.yml mounts its configuration directory

# Service → the container directories its generated files are written under: each needs a host directory mounted.
GENERATED_MOUNTS = {"prometheus": (PROMETHEUS_CONFIG_TARGET,),
                    "grafana": (GRAFANA_PROVISIONING, GRAFANA_DASHBOARDS),
                    "promtail": (PROMTAIL_CONFIG_TARGET,)}

# Services whose first port a generated file reads, and which file: each needs one, published (other hosts use it).
FIRST_PORT_READERS = {"prometheus": "prometheus.yml and Grafana's datasource", "node-exporter": "prometheus.yml",
                      "loki": "the shippers' config.yml and Grafana's datasource", "promtail": "its config.yml"}
