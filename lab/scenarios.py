"""Drive the deploy suite on the lab from outside, as a user would: for the end-to-end tests and bench/.

The suites run in a subprocess with the lab's environment and EXACTLY the pytest command of the
Makefile's target (`make -n deploy|plan|health INVENTORY=…`), options included; the deploy's result
comes back from reports/deploy/latest.json. Inventory variants (a wrong node, a changed address,
shorter deadlines) are written to a temp dir from inventories/lab.yml, never by editing it; a broken
change to the app is made in a copy of app-demo/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests
import yaml

from lab import net, orchestrate, procs
from lab.hosts import LabHosts

ROOT = Path(__file__).resolve().parent.parent
LAB_INVENTORY = ROOT / "inventories" / "lab.yml"
E2E_KNOWN_HOSTS = "known_hosts_e2e"
LATEST = ROOT / "reports" / "deploy" / "latest.json"


@dataclass
class DeployRun:
    """One run of a suite: exit code, wall time, output, and the deploy's result.json (if it wrote one)."""

    rc: int
    seconds: float
    output: str
    result: dict | None

    def tail(self, lines: int = 40) -> str:
        """The last lines of the run's output, for assertion messages."""
        return "\n".join(self.output.splitlines()[-lines:])


@dataclass
class DeployLedger:
    """What this process last did that may change the lab: the last deploy run (plan-only runs and deploys refused
    before any changing stage change nothing),
    and whether it was the Makefile's plain deploy of the lab inventory that passed (the lab is then deployed)."""

    last: DeployRun | None = None
    plain: bool = False

    def record(self, run: DeployRun | None, plain: bool) -> None:
        """A deploy ran (or anything else that changes the lab: run None)."""
        self.last, self.plain = run, plain and run is not None and run.rc == 0 and run.result is not None


LEDGER = DeployLedger()
PLAIN_DEPLOY_OPTIONS = {"--idempotence"}  # options that change what a deploy checks, not what it deploys


def suite_env() -> dict[str, str]:
    """The environment a user gets from `eval "$(python -m lab env)"`, on top of this process's."""
    return {**os.environ, **orchestrate.suite_env(orchestrate.status())}


def make_command(target: str, **variables: str) -> list[str]:
    """The pytest command `make TARGET VAR=…` runs after the lab's environment, as argv (read with `make -n`)."""
    args = ["make", "-n", "-s", target, *(f"{name}={value}" for name, value in variables.items())]
    printed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for line in printed.splitlines():
        if "pytest " in line:
            return shlex.split(line.split("&&", 1)[-1].strip())
    raise RuntimeError(f"`make {target}` runs no pytest command: {printed.strip()}")


def workflow_command(workflow: str, job: str) -> list[str]:
    """The pytest command a job of .github/workflows/<workflow> runs, as argv."""
    document = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    for step in document["jobs"][job]["steps"]:
        for line in str(step.get("run", "")).splitlines():
            if "pytest " in line:
                return shlex.split(line.strip())
    raise RuntimeError(f"job {job} of {workflow} runs no pytest command")


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """argv with OPTION's value replaced (the option must be there: a user's option is never added here)."""
    if option not in argv:
        raise RuntimeError(f"{shlex.join(argv)} has no {option}")
    at = argv.index(option) + 1
    return [*argv[:at], value, *argv[at + 1:]]


def suite_command(suite: str, *args: str, inventory: Path = LAB_INVENTORY, alluredir: Path | None = None) -> list[str]:
    """The Makefile's command for a suite (`deploy`, `plan` with --plan-only, `health`, `security`) plus ARGS."""
    target = suite if suite in ("health", "security") else "plan" if "--plan-only" in args else "deploy"
    cmd = make_command(target, INVENTORY=str(inventory))
    if alluredir is not None:
        cmd = with_option(cmd, "--alluredir", str(alluredir))
    return cmd + [arg for arg in args if arg != "--plan-only"]


def start_suite(suite: str, *args: str, inventory: Path = LAB_INVENTORY, output: Path) -> subprocess.Popen:
    """Start the Makefile's command for a suite in its own process group (as a CI job runs it); output to a file."""
    if suite == "deploy" and "--plan-only" not in args:
        LEDGER.record(None, plain=False)  # its outcome is the caller's: the lab may be anything after it
    with output.open("w") as sink:
        return subprocess.Popen(suite_command(suite, *args, inventory=inventory), cwd=ROOT, env=suite_env(),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def latest_result() -> dict | None:
    """reports/deploy/latest.json as it is now."""
    return _read_json(LATEST)


def run_suite(suite: str, *args: str, inventory: Path = LAB_INVENTORY, alluredir: Path | None = None,
              timeout: float = 1500) -> DeployRun:
    """Run the Makefile's command for a suite (`deploy`, `plan` with --plan-only, `health`) plus ARGS."""
    cmd = suite_command(suite, *args, inventory=inventory, alluredir=alluredir)
    latest = LATEST
    before = _read_json(latest)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=suite_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.monotonic() - started
    result = _read_json(latest) if suite == "deploy" else None
    if result is not None and (result == before or "stages" not in result):
        result = None  # the run wrote no result of its own
    run = DeployRun(proc.returncode, seconds, proc.stdout + proc.stderr, result)
    if suite == "deploy" and "--plan-only" not in args and not refused_before_any_change(result):
        LEDGER.record(run, plain=inventory == LAB_INVENTORY and set(args) <= PLAIN_DEPLOY_OPTIONS)
    return run


CHANGING_STAGES = ("start", "snapshot", "terraform", "firewall", "ha", "ansible")


def refused_before_any_change(result: dict | None) -> bool:
    """Whether a deploy's result shows it stopped before any stage that changes the lab ran (a guard's or the
    preflight's refusal): the lab is as the run before left it. No result: unknown, so False."""
    if not result or "stages" not in result:
        return False
    stages = result["stages"]
    return all(stages.get(name, {}).get("outcome") == "skipped" for name in CHANGING_STAGES) and \
        not result.get("snapshots") and not result.get("applied")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def app_copy(directory: Path) -> Path:
    """A copy of app-demo/ as the repository has it (no node_modules, dist or .git), to change in a scenario."""
    source = directory / "app-demo"
    shutil.copytree(ROOT / "app-demo", source, ignore=shutil.ignore_patterns("node_modules", "dist", ".git"))
    return source


def broken_app_copy(directory: Path) -> Path:
    """A copy of app-demo/ with a bad change: its /api/health raises (the backend answers 500), and a changed file."""
    source = app_copy(directory)
    app = source / "backend" / "src" / "app.js"
    good = 'res.json({ status: "ok", database: "ok" });'
    text = app.read_text()
    if good not in text:
        raise RuntimeError(f"{app}: no '{good}' to break; update lab/scenarios.py with the app")
    app.write_text(text.replace(good, 'throw new Error("health check broken by a bad change");'))
    (source / "README.md").write_text("changed by the broken deploy\n")
    return source


def destructive_migration_copy(directory: Path, column: str = "note") -> Path:
    """A copy of app-demo/ whose next migration drops a column the code still reads: /api/health then answers 500."""
    source = app_copy(directory)
    migrations = source / "backend" / "migrations"
    last = max(int(p.name.split("_", 1)[0]) for p in migrations.glob("*.sql"))
    (migrations / f"{last + 1:03d}_drop_item_{column}.sql").write_text(f"ALTER TABLE items DROP COLUMN {column};\n")
    return source


@contextlib.contextmanager
def changed_declaration(name: str, *changes: tuple[str, str]):
    """services/<name>.yml with each (old, new) text replaced, as a user edits it before a deploy; put back after,
    even when the block fails. A declaration that lacks `old` is an error (the scenario needs updating)."""
    path = ROOT / "services" / f"{name}.yml"
    original = path.read_text()
    text = original
    for old, new in changes:
        if old not in text:
            raise RuntimeError(f"{path}: no {old!r} to change; update lab/scenarios.py with the declaration")
        text = text.replace(old, new)
    path.write_text(text)
    try:
        yield path
    finally:
        path.write_text(original)


def inventory_variant(directory: Path, name: str, change) -> Path:
    """Write inventories/lab.yml changed by `change(document)` to directory/name.yml."""
    document = yaml.safe_load(LAB_INVENTORY.read_text())
    change(document)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


CLUSTER_INVENTORY = ROOT / "inventories" / "lab-cluster.yml"
# The cluster's hosts with fewer services each (the cluster's behaviour under test, not the stack's): the app for a
# failed deploy, Traefik for the routes, one service per HA host besides the exporters and the log shipper.
CLUSTER_LIGHT_SERVICES = {
    "proxy": ["traefik", "node-exporter", "promtail"],
    "utilities": ["vaultwarden", "node-exporter", "promtail"],
    "ci-runner": ["node-exporter", "promtail"],
    "monitoring": ["prometheus", "grafana", "loki", "node-exporter", "promtail"],
    "app-demo": ["app-demo-postgres", "app-demo-backend", "app-demo-frontend", "node-exporter", "promtail"],
}


def cluster_light_variant(directory: Path, name: str, node: str | None = None, **deploy: object) -> Path:
    """inventories/lab-cluster.yml with CLUSTER_LIGHT_SERVICES only, deploy settings changed, and (node given)
    every host on that one node (an HA host's node affinity dropped: it named the nodes spread over), written to
    directory/name.yml."""
    document = yaml.safe_load(CLUSTER_INVENTORY.read_text())
    for host in document["hosts"]:
        host["services"] = CLUSTER_LIGHT_SERVICES[host["hostname"]]
        if node is not None:
            host["node"] = node
            (host.get("ha") or {}).pop("nodes", None)
    document["deploy"].update(deploy)
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


SHORT_HEALTH_WAIT = 20  # seconds: the deploy's health checks in a scenario that fails on purpose


def short_deadlines_variant(directory: Path, seconds: float = SHORT_HEALTH_WAIT) -> Path:
    """lab.yml with deploy.max_health_wait capping the deploy's checks at `seconds`: a failure on purpose fails
    quickly (a scenario whose deploy touches no service but the failing one may pass a shorter cap)."""
    return inventory_variant(directory, "short-deadlines",
                             lambda document: document.setdefault("deploy", {}).update(max_health_wait=seconds))


def empty_lab(inventory: Path = LAB_INVENTORY) -> None:
    """Bring the lab back to 'nothing deployed': destroy the inventory's containers, drop the Terraform state."""
    LEDGER.record(None, plain=False)
    document = yaml.safe_load(inventory.read_text())
    api = _Api(orchestrate.status())
    # Each CT on the node it is on now (a cluster's inventory spreads them, HA or a migration moves them).
    existing = {int(row["vmid"]): row["node"] for row in api.call("GET", "/cluster/resources", type="vm")}
    for host in document["hosts"]:
        node = existing.get(host["vmid"])
        if node is not None:
            api.wait(api.call("DELETE", f"/nodes/{node}/lxc/{host['vmid']}", force=1, purge=1), node=node)
    backend = document["state_backend"]
    key, secret = orchestrate.STATE_STORE.credentials()
    s3 = boto3.client("s3", endpoint_url=backend["endpoint"], region_name=backend["region"],
                      aws_access_key_id=key, aws_secret_access_key=secret)
    listing = s3.list_objects_v2(Bucket=backend["bucket"]).get("Contents", [])
    for item in listing:
        s3.delete_object(Bucket=backend["bucket"], Key=item["Key"])
    keys_dir = Path(document["runner"]["deploy_key"]).parent
    # Re-created containers get new host keys: forget the old ones (the suite's and ssh_root's).
    for name in (f"known_hosts_{document['environment']}", E2E_KNOWN_HOSTS):
        (keys_dir / name).unlink(missing_ok=True)


def power_loss() -> dict[str, list]:
    """What a power cut (or a machine restart) leaves of the lab: every lab process killed by SIGKILL (found by
    its PID file), every container stopped the hard way (`lxc-stop -k`), the bridge gone. Files stay."""
    LEDGER.record(None, plain=False)
    killed = []
    for service in orchestrate.services():
        pid = procs.running_pid(orchestrate.PATHS.run_dir, service)
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed.append((service.name, pid))
    deadline = time.monotonic() + 10  # the kernel frees their ports once they are gone
    while any(Path(f"/proc/{pid}").exists() for _, pid in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    hosts = LabHosts()
    stopped = [h.vmid for h in hosts.list() if h.state == "running"]
    for vmid in stopped:
        hosts.kill(vmid)
    net.bridge_down()
    return {"killed": [name for name, _ in killed], "stopped": stopped}


class _Api:
    """Just enough of the lab's PVE API to destroy containers the way Terraform's destroy does."""

    def __init__(self, st: dict) -> None:
        self.url, self.node, self.verify = st["api_url"], st["node"], st["ca_file"]
        self.headers = {"Authorization": f"PVEAPIToken={st['token_id']}={st['token_secret']}"}

    def call(self, method: str, path: str, **params):
        """One API call; raise with PVE's message unless it answers 200."""
        response = requests.request(method, self.url + path, params=params, headers=self.headers,
                                    verify=self.verify, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.reason}")
        return response.json()["data"]

    def wait(self, upid: str, timeout: float = 120, node: str | None = None) -> None:
        """Wait for a task (on node, the lab's own by default); raise unless it ended OK."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.call("GET", f"/nodes/{node or self.node}/tasks/{upid}/status")
            if status["status"] == "stopped":
                if status.get("exitstatus") != "OK":
                    raise RuntimeError(f"task {upid}: {status.get('exitstatus')}")
                return
            time.sleep(0.2)
        raise RuntimeError(f"task {upid} still running after {timeout:.0f} s")


def ssh_root(ip: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command as root on a lab host with the deploy key (the key the lab gave at creation)."""
    st = orchestrate.status()
    known = Path(st["deploy_key"]).parent / E2E_KNOWN_HOSTS
    return subprocess.run(
        ["ssh", "-i", st["deploy_key"], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
         "-o", f"UserKnownHostsFile={known}", "-o", "ConnectTimeout=10", f"root@{ip}", command],
        capture_output=True, text=True, timeout=timeout, check=False)
