"""A mistake in services/<name>.yml, as the owner makes them editing one declaration at a time: one line each,
naming the declaration's file and key (both files when two declarations disagree), in the user's words, never a
secret's value. And the schema editors read (services/schema.json), and what a declaration changes in a deploy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from plugins.inventory import InventoryError, load_inventory
from plugins.inventory.catalog import CATALOG_DIR, load_catalog
from plugins.inventory.schema import DECLARATION_SCHEMA_PATH, SCHEMA_MODELINE, written_schemas
from plugins.stack import ansible_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"
PASSWORD = "hunter2-correct-horse"


@pytest.fixture
def services(tmp_path, monkeypatch) -> Path:
    """A copy of services/ in tmp_path, the working directory: lines name `services/<name>.yml` as in the repo."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CATALOG_DIR, tmp_path / "services")
    return Path("services")


def edit(services: Path, name: str, old: str | None, new: str) -> None:
    """Replace one text in services/<name>.yml (old must be there), or write the whole file (old None)."""
    path = services / f"{name}.yml"
    if old is None:
        path.write_text(new)
        return
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


def problems(services: Path, inventory: Path = LAB) -> list[str]:
    """The lines loading the inventory against that catalog gives ([] when it loads); each one line."""
    try:
        load_inventory(inventory, catalog=load_catalog(services))
    except InventoryError as error:
        lines = [line.replace(f"{ROOT}/", "") for line in error.lines()]
        assert all("\n" not in line and "\r" not in line for line in lines), lines
        return lines
    return []


# --- the cases ------------------------------------------------------------------------------------------

def test_a_dependency_cycle_is_refused_and_printed(services):
    """netbox ↔ netbox-db: one line, in netbox's file, naming the cycle and the file that closes it."""
    edit(services, "netbox-db", "image: postgres:15", "image: postgres:15\ndepends_on: [netbox]")
    assert problems(services) == [
        ("services/netbox.yml: depends_on[0]: dependency cycle netbox -> netbox-db -> netbox (services/netbox-db.yml: "
        "depends_on[0] closes it): nothing can start first (expected no service to depend on itself through others)")]


def test_a_ring_of_three_is_one_line(services):
    """snipeit → snipeit-db → netbox-redis → snipeit: the ring printed once, from its first name."""
    edit(services, "snipeit-db", "image:", "depends_on: [netbox-redis]\nimage:")
    edit(services, "netbox-redis", "image:", "depends_on: [snipeit]\nimage:")
    found = [line for line in problems(services) if "cycle" in line]
    assert found == [("services/netbox-redis.yml: depends_on[0]: dependency cycle netbox-redis -> snipeit -> "
                      "snipeit-db -> netbox-redis (services/snipeit-db.yml: depends_on[0] closes it): nothing can "
                      "start first (expected no service to depend on itself through others)")], found


def test_one_dependency_closing_two_cycles_is_one_line(services):
    """zabbix-db made to depend on zabbix-web closes two rings (through zabbix-server too): one line, the shorter."""
    edit(services, "zabbix-db", "image:", "depends_on: [zabbix-web]\nimage:")
    assert problems(services) == [
        ("services/zabbix-db.yml: depends_on[0]: dependency cycle zabbix-db -> zabbix-web -> zabbix-db "
         "(services/zabbix-web.yml: depends_on[0] closes it; 1 more through it): nothing can start first (expected no "
         "service to depend on itself through others)")]


def test_a_password_written_literally_is_refused_without_showing_it(services):
    """DB_PASSWORD: hunter2… in netbox's environment: refused, naming the file and key, never the value."""
    edit(services, "netbox", "DB_PASSWORD: {secret: netbox_db_password}", f"DB_PASSWORD: {PASSWORD}")
    [line] = problems(services)
    assert line.startswith("services/netbox.yml: environment.DB_PASSWORD: a value written here (not shown) is "
                           "refused: DB_PASSWORD names a secret"), line
    assert "{secret: NAME}" in line and PASSWORD not in line


@pytest.mark.parametrize(("key", "value"), [
    ("APP_KEY", "base64-but-short"),  # a secret's word on its own (KEY), not inside another word
    ("SMTP_PASS", "letmein-please"),
    ("WEBHOOK_URL", "https://hooks.example.net/ghp_Zx8Q2mV7pL4kN9rT1wY6bC3dF5hJ0sAeUiOq"),  # a token's shape
])
def test_a_secret_by_its_key_or_its_shape_is_refused(services, key, value):
    """A key that names a secret (KEY, PASS…) or a value shaped like one: refused, the value never shown."""
    edit(services, "uptime-kuma", "image:", f"environment:\n  {key}: \"{value}\"\nimage:")
    [line] = problems(services)
    assert line.startswith(f"services/uptime-kuma.yml: environment.{key}: a value written here (not shown)"), line
    assert value not in line


def test_a_value_marked_not_secret_with_a_reason_is_deployed_as_written(services):
    """{value, not_secret: why}: accepted, and the host vars carry the value as plain text."""
    edit(services, "uptime-kuma", "image:", "environment:\n  PUBLIC_KEY_URL: {value: 'https://keys.example.net', "
                                            "not_secret: the public half}\nimage:")
    assert problems(services) == []
    inventory = load_inventory(LAB, catalog=load_catalog(services))
    hosts = ansible_inventory(inventory)["all"]["hosts"]
    [entry] = [e for e in hosts["monitoring"]["stack_services"] if e["name"] == "uptime-kuma"]
    assert entry["env"] == {"PUBLIC_KEY_URL": "https://keys.example.net"} and entry["secret_env"] == []


@pytest.mark.parametrize("reason", ["", "x", "12345"])
def test_not_secret_needs_a_reason_in_words(services, reason):
    """not_secret: '' (or no words): refused; the line says what a reason is."""
    edit(services, "uptime-kuma", "image:", f"environment:\n  APP_KEY: {{value: abc, not_secret: '{reason}'}}\nimage:")
    assert problems(services) == [("services/uptime-kuma.yml: environment.APP_KEY.not_secret: expected why the value "
                                  "is not a secret, in words (e.g. 'the public URL')")]


def test_a_misspelt_secret_names_the_declaration_and_suggests_the_name(services):
    """The issue's example: netbox_api_tokn in services/netbox.yml is blamed on that file, not on the inventory."""
    edit(services, "netbox", "SUPERUSER_API_TOKEN: {secret: netbox_api_token}",
         "SUPERUSER_API_TOKEN: {secret: netbox_api_tokn}")
    assert problems(services) == [
        ("services/netbox.yml: environment.SUPERUSER_API_TOKEN: secret netbox_api_tokn is not in stack.secrets of "
        "inventories/lab.yml; did you mean netbox_api_token? (expected a secret stack.secrets names, or "
        "stack.secrets.netbox_api_tokn: {env: VAR} or {vault: var} added there)")]


def test_two_declarations_publishing_one_port_name_both_files(services):
    """netbox published on vaultwarden's port 8080 (both on utilities): the later one's key, the earlier's file."""
    edit(services, "netbox", "{container: 8080, published: 8001}", "{container: 8080, published: 8080}")
    assert problems(services) == [
        ("services/netbox.yml: ports[0].published: published port 8080 is also services/vaultwarden.yml's "
        "(ports[0].published); inventories/lab.yml runs both on utilities (expected a unique published port per host)")]


def test_two_declarations_taking_one_route_host_name_both_files(services):
    """grafana routed as vault: its route.host, and vaultwarden's file."""
    edit(services, "grafana", "route: {host: grafana,", "route: {host: vault,")
    assert problems(services) == [
        ("services/grafana.yml: route.host: vault.lab.home.arpa is also the route of services/vaultwarden.yml "
        "(route.host); inventories/lab.yml runs both (expected a unique route host per domain)")]


@pytest.mark.parametrize(("content", "expected"), [
    ("", "the file is empty (expected a service declaration: name, container, image, …)"),
    ("# nothing yet\n", "the file is empty"),
    ("- uptime-kuma\n", "the top level is a list (expected a service declaration"),
    ("uptime-kuma\n", "the top level is a single value"),
])
def test_an_emptied_declaration_says_so_in_words(services, content, expected):
    """No `valid dictionary or instance of Declaration`: the file is empty, or a list; and the inventory's hosts
    running it add no second line."""
    edit(services, "uptime-kuma", None, content)
    found = problems(services)
    assert len(found) == 1 and found[0].startswith(f"services/uptime-kuma.yml: {expected}"), found
    assert "Declaration" not in found[0] and "dictionary" not in found[0]


# --- every class of mistake: one line, the file and the key, the user's words ----------------------------------

MISTAKES = [
    ("unknown-key", "netbox", "image:", "imgae: x\nimage:",
     "services/netbox.yml: imgae: unknown key 'imgae' (did you mean 'image'? expected one of: name, container, image,"),
    ("missing-key", "netbox", "container: netbox\n", "", "services/netbox.yml: container: required key is missing"),
    ("number-for-text", "netbox", "DB_NAME: netbox", "DB_NAME: 5",
     ("services/netbox.yml: environment.DB_NAME: expected text, {secret: NAME} or {value: TEXT, not_secret: WHY}, "
     "found a number 5 (quote it for text)")),
    ("null-value", "netbox", "DB_NAME: netbox", "DB_NAME:",
     ("services/netbox.yml: environment.DB_NAME: expected text, {secret: NAME} or {value: TEXT, not_secret: WHY}, "
     "found null")),
    ("list-value", "netbox", "DB_NAME: netbox", "DB_NAME: [a, b]",
     ("services/netbox.yml: environment.DB_NAME: expected text, {secret: NAME} or {value: TEXT, not_secret: WHY}, "
     "found a list")),
    ("secret-ref-extra-key", "netbox", "DB_PASSWORD: {secret: netbox_db_password}",
     "DB_PASSWORD: {secret: netbox_db_password, why: x}",
     "services/netbox.yml: environment.DB_PASSWORD.why: unknown key 'why' (expected one of: secret)"),
    ("secret-name-grammar", "netbox", "{secret: netbox_db_password}", "{secret: Netbox-DB}",
     "services/netbox.yml: environment.DB_PASSWORD.secret: 'Netbox-DB' is not a secret's name"),
    ("port-as-text", "netbox", "{container: 8080, published: 8001}", "{container: '8080', published: 8001}",
     "services/netbox.yml: ports[0].container: expected an integer, found '8080'"),
    ("huge-port", "netbox", "{container: 8080, published: 8001}", "{container: 8080, published: 99999999999999}",
     "services/netbox.yml: ports[0].published: expected a number <= 65535, found 99999999999999"),
    ("restart-choice", "netbox", "image:", "restart: sometimes\nimage:",
     "services/netbox.yml: restart: expected one of: no, always, unless-stopped, on-failure, found 'sometimes'"),
    ("stop-signal-choice", "netbox", "stop_signal: SIGINT", "stop_signal: SIGKILL",
     "services/netbox.yml: stop_signal: expected one of: SIGTERM, SIGINT, SIGQUIT, found 'SIGKILL'"),
    ("image-unpinned", "vaultwarden", "vaultwarden/server:1.32.7", "vaultwarden/server:latest",
     "services/vaultwarden.yml: image: vaultwarden/server:latest is not pinned"),
    ("image-grammar", "vaultwarden", "vaultwarden/server:1.32.7", "Vaultwarden",
     "services/vaultwarden.yml: image: 'Vaultwarden' is not an image reference with a tag"),
    ("odd-unicode-name", "netbox", "name: netbox", "name: nétbox",
     "services/netbox.yml: name: 'nétbox' is not an RFC 1123 label"),
    ("name-not-file", "netbox", "name: netbox", "name: netbox2",
     "services/netbox.yml: name: 'netbox2' is not the file's name (expected 'netbox')"),
    ("check-port-not-a-container-port", "grafana", "- {port: 3000, path: /api/health", "- {port: 3001, path: /api/health",
     ("services/grafana.yml: http[0].port: container port 3001 is not one of the container's ports (expected one of "
     "ports[].container for an HTTP check: 3000)")),
    ("check-port-not-published", "netbox-db", "image: postgres:15",
     "image: postgres:15\nports: [{container: 5432}]\nhttp: [{port: 5432, accepted: [200]}]",
     "services/netbox-db.yml: http[0].port: container port 5432 is not published"),
    ("no-ports-at-all", "netbox", "ports:\n  - {container: 8080, published: 8001}\n", "",
     "services/netbox.yml: ports: no port declared, yet its HTTP checks, probes or route use container port 8080"),
    ("dependency-undeclared", "netbox", "depends_on: [netbox-db,", "depends_on: [netbox-dbb,",
     "services/netbox.yml: depends_on[0]: 'netbox-dbb' is not declared (did you mean netbox-db? expected one of:"),
    ("dependency-on-itself", "netbox", "depends_on: [netbox-db,", "depends_on: [netbox, netbox-db,",
     "services/netbox.yml: depends_on[0]: netbox depends on itself"),
    ("dependency-twice", "netbox", "depends_on: [netbox-db,", "depends_on: [netbox-db, netbox-db,",
     "services/netbox.yml: depends_on[1]: netbox-db is listed twice"),
    ("secret-in-a-command", "uptime-kuma", "image:",
     "command: [--token, ghp_Zx8Q2mV7pL4kN9rT1wY6bC3dF5hJ0sAeUiOq]\nimage:",
     "services/uptime-kuma.yml: command[1]: a value shaped like a secret (a key, token or UUID; not shown) is refused"),
    ("probe-kind", "zabbix-web", "{kind: zabbix_api,", "{kind: zabbix_rpc,",
     "services/zabbix-web.yml: probes[0].kind: expected one of: vaultwarden_admin, netbox_status, zabbix_api,"),
    ("dependencies-deleted", "netbox", "depends_on: [netbox-db, netbox-redis]\n", "",
     ("services/netbox.yml: depends_on: DB_HOST, REDIS_HOST, REDIS_CACHE_HOST name the container of netbox-db, "
     "netbox-redis, which depends_on does not list (expected depends_on: [netbox-db, netbox-redis]")),
    ("volume-target-relative", "netbox", "target: /opt/netbox/netbox/media", "target: media",
     "services/netbox.yml: volumes[0].target: 'media' is not an absolute path"),
    ("build-context-escapes", "app-demo-backend", "context: backend", "context: ../etc",
     "services/app-demo-backend.yml: build.context: '../etc' is not a directory inside the role's source"),
    ("healthcheck-empty-test", "netbox-db", "test: [CMD, pg_isready, -U, netbox]", "test: []",
     "services/netbox-db.yml: healthcheck.test: expected at least 1 item(s), found []"),
    ("no-accepted-code", "netbox", "accepted: [200], warmup: [502, 503], deadline: 300}",
     "accepted: [], warmup: [502, 503], deadline: 300}", "services/netbox.yml: http[0].accepted: expected at least 1"),
    ("code-out-of-range", "netbox", "accepted: [200], warmup: [502, 503], deadline: 300}",
     "accepted: [2000], warmup: [502, 503], deadline: 300}",
     "services/netbox.yml: http[0].accepted[0]: expected an HTTP status code 100-599, found 2000"),
    ("warmup-also-accepted", "netbox", "accepted: [200], warmup: [502, 503]", "accepted: [200, 503], warmup: [502, 503]",
     "services/netbox.yml: http[0].warmup[1]: 503 is also in accepted"),
    ("deadline-past-an-hour", "netbox", "warmup: [502, 503], deadline: 300}", "warmup: [502, 503], deadline: 36000}",
     "services/netbox.yml: http[0].deadline: expected a number of seconds > 0 and <= 3600, found 36000"),
    ("route-host-grammar", "grafana", "route: {host: grafana,", "route: {host: Grafana_UI,",
     "services/grafana.yml: route.host: 'Grafana_UI' is not an RFC 1123 label"),
    ("command-not-a-list", "promtail", "command: [-config.file=/etc/promtail/config.yml]",
     "command: -config.file=/etc/promtail/config.yml",
     "services/promtail.yml: command: expected a list, found '-config.file=/etc/promtail/config.yml'"),
    ("generated-config-port-unpublished", "loki", "{container: 3100, published: 3100}", "{container: 3100}",
     "services/loki.yml: http[0].port: container port 3100 is not published"),
    ("generated-config-without-port", "promtail", "ports:\n  - {container: 9080, published: 9080}\n", "",
     "services/promtail.yml: ports: no port declared, yet its HTTP checks, probes or route use container port 9080"),
    ("yaml-error", "netbox", "depends_on: [netbox-db, netbox-redis]", "depends_on: [netbox-db, netbox-redis",
     "services/netbox.yml: line 24, column 13: invalid YAML: a [ list opens here and is never closed"),
    ("yaml-11-boolean", "netbox", "DB_NAME: netbox", "DB_NAME: on",
     "services/netbox.yml: line 11, column 12: 'on' is read as a boolean by YAML 1.1"),
]


@pytest.mark.parametrize(("name", "old", "new", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_one_line_naming_the_file_and_key(services, name, old, new, expected):
    """The line starts with the declaration's file and key and says what was expected, in the user's words."""
    edit(services, name, old, new)
    found = problems(services)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "Input should" not in found[0] and "pydantic" not in found[0]


def test_a_generated_file_needs_the_first_port_of_what_it_reads(services):
    """promtail without ports (nor a check): its config.yml has no port to listen on: said, not a crash."""
    edit(services, "promtail", "ports:\n  - {container: 9080, published: 9080}\n", "")
    edit(services, "promtail", "http:\n  - {port: 9080, path: /ready, accepted: [200], warmup: [503], deadline: 60}\n", "")
    assert problems(services) == [("services/promtail.yml: ports: no port declared (expected one, published: its "
                                  "config.yml reads its first port)")]


def test_a_missing_stack_section_is_said_first_and_once(tmp_path):
    """The stack section deleted: one line, the cause, not one per secret the services need."""
    document = yaml.safe_load(LAB.read_text())
    del document["stack"]
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    [line] = caught.value.lines()
    assert line.startswith(f"{path}: stack: the inventory has no stack section, which its services need for "
                           "11 secret(s) (vaultwarden_admin_token, snipeit_db_password,"), line


def test_missing_stack_secrets_are_said_once(tmp_path):
    """stack.secrets deleted: one line naming what the services need, not one per declaration."""
    document = yaml.safe_load(LAB.read_text())
    del document["stack"]["secrets"]
    path = tmp_path / "lab.yml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    [line] = caught.value.lines()
    assert line.startswith(f"{path}: stack.secrets: no secret is sourced, yet its services need 11"), line


# --- the schema, the shipped catalog --------------------------------------------------------------------------

def test_the_declarations_schema_is_up_to_date():
    """services/schema.json is what the model generates (`python -m plugins.inventory schema` writes both)."""
    assert DECLARATION_SCHEMA_PATH.read_text() == written_schemas()[DECLARATION_SCHEMA_PATH], \
        "services/schema.json is stale: run python -m plugins.inventory schema"


def test_every_declaration_names_its_schema_for_editors():
    """The first line of each services/<name>.yml points the YAML language server at services/schema.json."""
    missing = [path.name for path in sorted(CATALOG_DIR.glob("*.yml"))
               if path.read_text().splitlines()[:1] != [SCHEMA_MODELINE]]
    assert not missing, f"{', '.join(missing)}: first line is not {SCHEMA_MODELINE!r}"


def test_the_schema_knows_what_a_declaration_may_hold():
    """The schema refuses a misspelt key and gives the environment's three forms."""
    schema = yaml.safe_load(DECLARATION_SCHEMA_PATH.read_text())
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"name", "container", "image"}
    [values] = schema["properties"]["environment"]["patternProperties"].values()
    assert [branch.get("type") or branch["$ref"].rsplit("/", 1)[-1] for branch in values["oneOf"]] == \
        ["string", "SecretRef", "PlainValue"]
