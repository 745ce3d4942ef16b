"""Both inventories against the service catalog: every layer derives the same facts from one declaration, and a
fact changed in one place only turns a test red.

What Ansible runs (host vars), what Traefik routes (its generated configuration) and what the health suite and
the rollback's wait check (containers, HTTP checks directly and through Traefik) are compared here for lab.yml
AND homelab.yml; then copies of the catalog are mutated to show a disagreement cannot pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import pytest
import yaml

from plugins.health.registry import services_of
from plugins.inventory import InventoryError, load_inventory, repository_problems
from plugins.inventory.catalog import CATALOG_DIR, load_catalog
from plugins.stack import ansible_inventory
from plugins.stack.traefik import static_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = {"lab": ROOT / "inventories" / "lab.yml", "homelab": ROOT / "inventories" / "homelab.yml"}


@pytest.fixture(params=sorted(INVENTORIES))
def inventory(request):
    """lab.yml, then homelab.yml."""
    return load_inventory(INVENTORIES[request.param])


def test_the_catalog_has_no_problem():
    """Every services/<name>.yml validates and its internal references hold."""
    assert load_catalog().problems == []


def test_ansible_runs_the_containers_the_health_suite_expects(inventory):
    """Per host: the stack_services host var (what Ansible runs) = the containers the health checks look for."""
    hosts = ansible_inventory(inventory)["all"]["hosts"]
    for host in inventory.hosts:
        deployed = [entry["container"] for entry in hosts[host.hostname]["stack_services"]]
        assert deployed == host.containers == hosts[host.hostname]["containers"], host.hostname


def test_ansible_stops_each_container_as_its_declaration_says(inventory):
    """init and stop_signal reach the host vars from the declaration, and the stack role's docker_container gets
    the declared signal, or no stop_signal at all (the image's own) when the declaration names none."""
    catalog = load_catalog()
    tasks = yaml.safe_load((ROOT / "ansible" / "roles" / "stack" / "tasks" / "main.yml").read_text())
    [run] = [task["community.docker.docker_container"] for task in tasks
             if task.get("name") == "Run the services' containers"]
    hosts = ansible_inventory(inventory)["all"]["hosts"]
    signals = {}
    for host in inventory.hosts:
        for entry in hosts[host.hostname]["stack_services"]:
            declared = catalog[entry["name"]]
            assert (entry["init"], entry["stop_signal"]) == (declared.init, declared.stop_signal), entry["name"]
            given = jinja2.Template(run["stop_signal"]).render(item=entry, omit="OMITTED")
            assert jinja2.Template(run["init"]).render(item=entry) == str(declared.init), entry["name"]
            signals[entry["container"]] = given
    assert signals["netbox"] == "SIGINT", "NetBox's lab image (gunicorn) stops promptly on SIGINT only"
    assert {given for name, given in signals.items() if name != "netbox"} == {"OMITTED"}, signals


def test_ansible_publishes_the_ports_the_direct_checks_use(inventory):
    """Every direct HTTP check's port is a port Ansible publishes on that host."""
    hosts = ansible_inventory(inventory)["all"]["hosts"]
    for host in inventory.hosts:
        published = {int(p.split(":")[0]) for entry in hosts[host.hostname]["stack_services"] for p in entry["ports"]}
        for service in host.endpoints:
            if service.connect_to:
                continue
            parts = urlsplit(service.url)
            assert parts.hostname == host.ip and (parts.port or 80) in published, (host.hostname, service.url)


def test_traefik_routes_what_the_checks_reach_through_it(inventory):
    """Each router's host name is the one its check sends (SNI + Host), to the host:port its direct check uses."""
    proxy = inventory.proxy_host
    dynamic = ansible_inventory(inventory)["all"]["hosts"][proxy.hostname]["proxy_dynamic_config"]
    routers, backends = dynamic["http"]["routers"], dynamic["http"]["services"]
    via = {s.name.removesuffix("-via-traefik"): (h, s) for h, s in inventory.endpoints if s.connect_to}
    assert sorted(via) == sorted(routers)
    for name, (host, service) in via.items():
        assert routers[name]["rule"] == f"Host(`{urlsplit(service.url).hostname}`)"
        assert service.connect_to == proxy.ip
        [server] = backends[name]["loadBalancer"]["servers"]
        decl = inventory.catalog[name]
        assert server["url"] == f"http://{host.ip}:{decl.published(decl.route.port)}"


def test_traefik_listens_where_its_declaration_publishes(inventory):
    """The static configuration's entrypoints are the ports services/traefik.yml publishes and checks."""
    decl = inventory.catalog["traefik"]
    static = ansible_inventory(inventory)["all"]["hosts"][inventory.proxy_host.hostname]["proxy_static_config"]
    addresses = {name: int(entry["address"].lstrip(":")) for name, entry in static["entryPoints"].items()}
    assert set(addresses.values()) == {p.container for p in decl.ports}
    assert static["ping"]["entryPoint"] == "traefik" and static["metrics"]["prometheus"]["entryPoint"] == "traefik"
    assert static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure"


def test_the_health_suite_and_the_rollback_wait_read_the_same_checks(inventory):
    """services_of (the rollback's wait, the health stage) gives exactly the inventory's derived HTTP checks."""
    assert services_of(inventory.hosts) == inventory.endpoints


def test_secrets_reach_ansible_by_name_only(inventory):
    """A secret appears in the host vars as where it comes from (env or vault), never as a value."""
    for host in ansible_inventory(inventory)["all"]["hosts"].values():
        for entry in host["stack_services"]:
            for ref in entry["secret_env"]:
                assert set(ref) in ({"name", "env"}, {"name", "vault"}), ref
                assert ref["name"] not in entry["env"]


def test_the_lab_agrees_with_the_repository():
    """Both inventories, the catalog, the roles and the app's Dockerfiles agree."""
    assert repository_problems(load_inventory(INVENTORIES["lab"])) == []
    assert repository_problems(load_inventory(INVENTORIES["homelab"])) == []


# --- one fact changed in one place: red ------------------------------------------------------------------------

def copied_catalog(tmp_path: Path) -> Path:
    """A copy of services/ to mutate."""
    return Path(shutil.copytree(CATALOG_DIR, tmp_path / "services"))


def problems_of(inventory: Path, catalog: Path) -> list[str]:
    """The one-line problems loading the inventory with that catalog gives ([] when it loads)."""
    try:
        load_inventory(inventory, catalog=load_catalog(catalog))
    except InventoryError as error:
        return error.lines()
    return []


def edit(directory: Path, name: str, old: str, new: str) -> None:
    """Replace one text in services/<name>.yml (it must be there)."""
    path = directory / f"{name}.yml"
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


def test_a_port_changed_in_the_declaration_only_turns_red(tmp_path):
    """The backend's published container port changed in services/ alone: its PORT, its Dockerfile's EXPOSE, its
    route and its check still say 3000: red, naming each."""
    catalog = copied_catalog(tmp_path)
    edit(catalog, "app-demo-backend", "{container: 3000, published: 3000}", "{container: 3090, published: 3090}")
    inventory_problems = problems_of(INVENTORIES["lab"], catalog)
    assert any("app-demo-backend.yml: environment.PORT: PORT is '3000', but its ports declare container port 3090" in p
               for p in inventory_problems), \
        inventory_problems
    assert any("route" in p and "3000" in p for p in inventory_problems), inventory_problems


def test_a_port_changed_in_the_declarations_but_not_the_image_turns_red(tmp_path):
    """Every 3000 of the backend's declaration made 3090: the frontend still calls :3000 (red); that fixed too,
    the image still EXPOSEs 3000 (red, naming the Dockerfile)."""
    catalog = copied_catalog(tmp_path)
    path = catalog / "app-demo-backend.yml"
    path.write_text(path.read_text().replace("3000", "3090"))
    found = problems_of(INVENTORIES["lab"], catalog)
    assert any("app-demo-frontend.yml: environment.BACKEND_URL: names port 3000 of app-demo-backend" in p for p in found), \
        found
    edit(catalog, "app-demo-frontend", "http://app-demo-backend:3000", "http://app-demo-backend:3090")
    inventory = load_inventory(INVENTORIES["lab"], catalog=load_catalog(catalog))
    repository = [message for _, message in repository_problems(inventory)]
    assert repository == [("app-demo/backend/Dockerfile EXPOSEs 3000, but services/app-demo-backend.yml publishes "
                          "container port 3090")]


def test_a_container_name_changed_in_the_declaration_only_turns_red(tmp_path):
    """The backend's container renamed in services/ alone: the frontend's BACKEND_URL still names
    app-demo-backend: red."""
    catalog = copied_catalog(tmp_path)
    edit(catalog, "app-demo-backend", "container: app-demo-backend", "container: app-demo-api")
    found = problems_of(INVENTORIES["lab"], catalog)
    assert any("app-demo-frontend.yml: environment.BACKEND_URL: names app-demo-backend, which is not the container of "
               "any of its dependencies "
               "(expected one of: app-demo-api)" in p for p in found), found


@pytest.mark.parametrize(("name", "old", "new", "expected"), [
    ("grafana", "- {port: 3000, path: /api/health", "- {port: 3001, path: /api/health",
     "services/grafana.yml: http[0].port: container port 3001 is not one of the container's ports"),
    ("grafana", "route: {host: grafana, port: 3000}", "route: {host: grafana, port: 3001}",
     "services/grafana.yml: route.port: container port 3001 is not one of the container's ports"),
    ("zabbix-web", "{kind: zabbix_api, port: 8080", "{kind: zabbix_api, port: 8081",
     "services/zabbix-web.yml: probes[0].port: container port 8081 is not one of the container's ports"),
    ("zabbix-web", "{kind: zabbix_api,", "{kind: zabbix_rpc,", "services/zabbix-web.yml: probes[0].kind"),
    ("traefik", "{name: websecure, container: 443, published: 443}", "{container: 443, published: 443}",
     "services/traefik.yml: ports: no port named websecure"),
    ("vaultwarden", "image: vaultwarden/server:1.32.7", "image: vaultwarden/server:latest",
     "services/vaultwarden.yml: image: vaultwarden/server:latest is not pinned"),
    ("vaultwarden", "container: vaultwarden", "container: vault warden",
     "services/vaultwarden.yml: container"),
    ("grafana", "route: {host: grafana,", "route: {host: vault,", "services/grafana.yml: route.host: vault.lab.home.arpa is also the route of "),
    ("vaultwarden", "{kind: vaultwarden_admin, port: 80,", "{kind: vaultwarden_admin, port: 81,",
     "services/vaultwarden.yml: probes[0].port: container port 81 is not one of the container's ports"),
    ("vaultwarden", "secret: vaultwarden_admin_token}\n", "secret: vaultwarden_probe_token}\n",
     "services/vaultwarden.yml: environment.ADMIN_TOKEN: secret vaultwarden_probe_token is not in stack.secrets"),
    ("netbox", "SUPERUSER_API_TOKEN: {secret: netbox_api_token}", "SUPERUSER_API_TOKEN: {secret: netbox_api_tokn}",
     ("services/netbox.yml: environment.SUPERUSER_API_TOKEN: secret netbox_api_tokn is not in stack.secrets of "
      "inventories/lab.yml; did you mean netbox_api_token?")),
    ("grafana", "  - {container: 3000, published: 3000}", ("  - {container: 3000, published: 3000}\n"
     "  - {container: 3002, published: 3000}"), "services/grafana.yml: ports[1].published: 3000 is published twice"),
])
def test_a_declaration_that_disagrees_with_itself_or_the_others_is_one_line(tmp_path, name, old, new, expected):
    """A check's port, a route's port, Traefik's entrypoint, an unpinned tag, a bad name, a route taken twice."""
    catalog = copied_catalog(tmp_path)
    edit(catalog, name, old, new)
    with pytest.raises(InventoryError) as caught:
        load_inventory(INVENTORIES["lab"], catalog=load_catalog(catalog))
    message = str(caught.value)
    assert "\n" not in message and expected in message, message


def test_a_dependency_on_another_host_is_refused(tmp_path):
    """depends_on names a service of the same host: the lab's grafana depending on vaultwarden is refused."""
    catalog = copied_catalog(tmp_path)
    edit(catalog, "grafana", "route: {host: grafana", "depends_on: [vaultwarden]\nroute: {host: grafana")
    with pytest.raises(InventoryError, match="grafana depends on vaultwarden, which monitoring does not run"):
        load_inventory(INVENTORIES["lab"], catalog=load_catalog(catalog))


def test_services_start_after_what_they_depend_on():
    """homelab's netbox comes after its database and redis, whatever the inventory's order."""
    inventory = load_inventory(INVENTORIES["homelab"])
    order = inventory.host("utilities").containers
    assert order.index("netbox") > order.index("netbox-db") and order.index("netbox") > order.index("netbox-redis")


# --- the homelab's rendered configuration, validated (it is never deployed from here) ---------------------------

def test_homelab_traefik_configuration_is_complete():
    """Static and dynamic config for the owner: https redirect, TLS store, one router per routed service."""
    homelab = load_inventory(INVENTORIES["homelab"])
    hostvars = ansible_inventory(homelab)["all"]["hosts"]["proxy"]
    static, dynamic = hostvars["proxy_static_config"], hostvars["proxy_dynamic_config"]
    assert static == static_config(homelab.catalog["traefik"])
    assert static["providers"]["file"] == {"directory": "/etc/traefik/dynamic", "watch": True}
    assert {e["address"] for e in static["entryPoints"].values()} == {":80", ":443", ":8082"}
    routers = dynamic["http"]["routers"]
    assert sorted(routers) == ["app-demo-backend", "app-demo-frontend", "grafana", "netbox", "prometheus",
                               "snipeit", "uptime-kuma", "vaultwarden", "zabbix-web"]
    assert routers["app-demo-frontend"]["rule"] == "Host(`app.homelab.home.arpa`)"
    assert dynamic["http"]["services"]["app-demo-backend"]["loadBalancer"]["servers"] == [
        {"url": f"http://{homelab.host('app-demo').ip}:3000"}]
    assert all(r["entryPoints"] == ["websecure"] and r["tls"] == {} for r in routers.values())
    assert dynamic["tls"]["stores"]["default"]["defaultCertificate"]["certFile"] == "/etc/traefik/tls/cert.pem"
    yaml.safe_load(yaml.safe_dump(dynamic))  # what the proxy role writes with to_nice_yaml


def test_homelab_environment_names_every_secret_by_vault_variable():
    """Every secret a homelab service needs comes from an Ansible Vault variable; no value in the host vars."""
    homelab = load_inventory(INVENTORIES["homelab"])
    refs = [ref for host in ansible_inventory(homelab)["all"]["hosts"].values()
            for entry in host["stack_services"] for ref in entry["secret_env"]]
    assert refs and all(set(ref) == {"name", "vault"} and ref["vault"].startswith("vault_") for ref in refs)
    pulled = [e for h in ansible_inventory(homelab)["all"]["hosts"].values() for e in h["stack_services"] if e["pull"]]
    assert all(":" in e["image"] and not e["image"].endswith(":latest") for e in pulled)


def test_homelab_checks_are_the_owners(tmp_path):
    """The owner's health URLs, derived: Vaultwarden on 8080 /alive, NetBox 8001, Traefik /ping on 8082."""
    homelab = load_inventory(INVENTORIES["homelab"])
    urls = {s.name: s.url for _, s in homelab.endpoints}
    # the addresses are the inventory's own (rendered, never contacted): only ports and paths are asserted here
    utilities, proxy, app = (homelab.host(name).ip for name in ("utilities", "proxy", "app-demo"))
    assert urls["vaultwarden"] == f"http://{utilities}:8080/alive"
    assert urls["netbox"] == f"http://{utilities}:8001/login/"
    assert urls["traefik-ping"] == f"http://{proxy}:8082/ping"
    assert urls["traefik-entrypoint"] == f"http://{proxy}/"
    assert urls["app-demo-backend"] == f"http://{app}:3000/api/health"
    assert urls["grafana-via-traefik"] == "https://grafana.homelab.home.arpa/api/health"


def test_every_declared_probe_is_checked_directly_and_through_traefik(inventory):
    """A declaration's probes: one functional check at the published port, one through the proxy where routed;
    the secret it needs is named in stack.secrets, by the env var (lab) or '' (a vault var, homelab)."""
    for host in inventory.hosts:
        expected = []
        for decl in host.declarations:
            for probe in decl.probes:
                name = f"{decl.name}-{probe.kind.replace('_', '-')}"
                expected.append(name)
                if decl.route and decl.route.port == probe.port:
                    expected.append(f"{name}-via-traefik")
        assert [check.name for check in host.probes] == expected, host.hostname
        for check in host.probes:
            source = {name: inventory.stack.secrets[name] for name in check.secrets}
            assert check.secrets == {name: s.env or "" for name, s in source.items()}
            if check.connect_to:
                assert check.connect_to == inventory.proxy_host.ip and check.url.startswith("https://")
            else:
                assert urlsplit(check.url).hostname == host.ip
