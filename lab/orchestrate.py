"""Bring the embedded lab up and down: bridge, base, keys, PVE emulator, S3 state store, image registry,
npm mirror; `up` after the lab's processes or the machine went away boots the node (lab.pve.boot).

Every step is idempotent, so `up` twice is harmless and `down` after a killed session
still finds and removes what was left (containers, mounts, bridge, processes by PID file).
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from lab import config, net, procs, s3, stack_files
from lab.hosts import LabHosts
from lab.images import publish as images
from lab.images import recipe as image_recipes
from lab.npm_mirror import NpmMirror, seed_lockfiles
from lab.pve import auth as pve_auth
from lab.pve import boot as pve_boot
from lab.pve import ca as pve_ca
from lab.pve import cluster as pve_cluster
from lab.pve.firewall import TABLE as FIREWALL_TABLE
from lab.pve.firewall import nft_remove, nft_table_exists
from lab.registry import Registry

PATHS = config.PATHS
ROOT = Path(__file__).resolve().parent.parent
PVE_PORT = 8006
LAB_ROOT = Path(__file__).resolve().parent
EMULATOR_CODE_FILE = "pve.code"  # beside its pid file: the digest of the code the running emulator started with
S3_PORT = 9000
REJECT_PORT = 9001
S3_BUCKET = s3.BUCKET
REGISTRY = Registry.lab(PATHS)
NPM_MIRROR = NpmMirror.lab(PATHS)
IMAGE_CACHE = PATHS.cache_dir / "images"

PVE = procs.Service("pve", "lab.pve", ("serve", "--node", config.NODE, "--port", str(PVE_PORT),
                                        "--state-dir", str(PATHS.pve_dir),
                                        "--fence-delay", str(config.HA_FENCE_DELAY), "--ha-round", str(config.HA_ROUND)))
STATE_STORE = s3.StateStore(PATHS.lab_dir / "s3", PATHS.run_dir, PATHS.log_dir, PATHS.keys_dir, port=S3_PORT)
S3 = STATE_STORE.service()
STS = procs.Service("sts", "lab.sts", ("--port", str(REJECT_PORT)))

Progress = Callable[[str], None]


def services() -> tuple[procs.Service, ...]:
    """Every background process of the lab, each with its PID file in the run dir."""
    return (PVE, S3, STS, REGISTRY.service(), NPM_MIRROR.service())


def _quiet(_: str) -> None:
    pass


def ensure_deploy_key(key: Path = PATHS.deploy_key) -> Path:
    """Generate the runner's deploy key (ed25519, no passphrase) once."""
    if not key.exists() or not key.with_suffix(".pub").exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab-runner-deploy",
                        "-f", str(key)], check=True)
    return key


def _wait_port(port: int, timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    log = PATHS.log_dir / f"{name}.log"
    tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    raise RuntimeError(f"lab {name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s; "
                       f"log {log}: {' | '.join(tail)}")


def cluster_nodes(nodes: int | None = None) -> list[pve_cluster.ClusterNode]:
    """The emulated cluster's nodes; with a count, make the cluster that many nodes first (None: keep it)."""
    return pve_cluster.Cluster(PATHS.pve_dir / "state", config.NODE, nodes).nodes


def set_node_online(name: str, online: bool) -> None:
    """Take an emulated node down or bring it back (its API calls fail as a down node's do; the emulator's HA manager
    stops its containers and, after the fence delay, recovers its HA ones)."""
    pve_cluster.Cluster(PATHS.pve_dir / "state", config.NODE).set_online(name, online)


def emulator_code(root: Path = LAB_ROOT) -> str:
    """A digest of the code an emulator started from this checkout runs (lab/*.py, lab/pve/: its modules and schema)."""
    digest = hashlib.sha256()
    for path in sorted([*root.glob("*.py"), *(root / "pve").rglob("*.py"), *(root / "pve").rglob("*.json")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def stop_stale_emulator(progress: Progress = _quiet) -> None:
    """Stop a running emulator whose code is not this checkout's (a pull, or another worktree started it), so that
    lab up's start serves this code; the containers keep running, nothing boots."""
    pid = procs.running_pid(PATHS.run_dir, PVE)
    try:
        started_with = (PATHS.run_dir / EMULATOR_CODE_FILE).read_text().strip()
    except OSError:
        started_with = "unknown"
    if pid is not None and started_with != emulator_code():
        progress("pve api: restarted: it ran other code than this checkout's lab/ (its containers keep running)")
        procs.stop(PATHS.run_dir, PVE)


def resize_cluster(nodes: int | None, progress: Progress = _quiet) -> list[pve_cluster.ClusterNode]:
    """Make the emulated cluster `nodes` nodes (None: keep it); a running emulator serving another size is stopped,
    so that the start that follows serves the new one (it reads its nodes and storages once, at its start)."""
    before = len(cluster_nodes())
    members = cluster_nodes(nodes)
    pid = procs.running_pid(PATHS.run_dir, PVE)
    if len(members) != before and pid is not None:
        progress(f"pve api: restarted for {len(members)} node(s) instead of {before} (its containers keep running)")
        procs.stop(PATHS.run_dir, PVE)
    return members


def up(progress: Progress = _quiet, nodes: int | None = None) -> dict:
    """Bring every piece of the lab up (idempotent) and return the status; nodes: the emulated cluster's size."""
    builds = config.image_builds()  # a bad setting stops here, before anything is made
    progress(f"bridge {config.BRIDGE} {config.BRIDGE_ADDRESS}/{config.PREFIX}")
    net.bridge_up()
    progress(f"deploy key {ensure_deploy_key()}")
    progress = images.serialized(progress)  # the image builds' thread prints too: one whole line at a time
    needed = _images_needed(progress)
    stop = threading.Event()
    # The image builds need nothing of what comes before the registry: on a fresh machine they start now, beside
    # the base rootfs and the services (the longest chain, NetBox's, starts a minute sooner); the pushes wait.
    images_started = time.monotonic()
    with ThreadPoolExecutor(1, thread_name_prefix="lab-up-images") as pool:
        building = pool.submit(images.ensure, None, IMAGE_CACHE, lambda line: progress(f"images: {line}"),
                               needed, builds, stop)
        try:
            booting = _base_and_services(progress, nodes)
        except BaseException:
            stop.set()  # no build starts; the running ones finish and stay cached
            raise
        built = [o.recipe for o in building.result() if o.built_seconds]
    ensure_images(progress, builds, needed, built, images_started)
    NPM_MIRROR.seed(seed_lockfiles(), PATHS.run_dir, PATHS.log_dir, progress)
    NPM_MIRROR.start(PATHS.run_dir, PATHS.log_dir)
    progress(f"npm mirror {NPM_MIRROR.url} ({len(NPM_MIRROR.packages())} packages, no uplink)")
    _wait_port(PVE_PORT, 30, "pve")
    _wait_port(REJECT_PORT, 30, "sts")
    status_now = status()
    _check_api(status_now)
    if booting:
        # the emulator was not running: the node boots, as pve-guests.service runs startall
        _boot(status_now, progress)
        status_now = status()
    return status_now


def _base_and_services(progress: Progress, nodes: int | None) -> bool:
    """The base rootfs, the CA, certificates, secrets and tokens, then the emulator, S3 and the registry; whether
    the emulator was not running (the node then boots)."""
    hosts = LabHosts()
    progress("base rootfs (a cold build takes a few minutes; cached afterwards)")
    hosts.ensure_base()
    pve_ca.ensure_ca(PATHS.pve_dir)
    progress(f"proxy certificate {stack_files.ensure_proxy_cert(PATHS)} (signed by the lab CA)")
    stack_files.ensure_service_secrets(PATHS)
    pve_auth.ensure_tokens(PATHS.pve_dir)
    booting = procs.running_pid(PATHS.run_dir, PVE) is None
    stop_stale_emulator(progress)
    members = resize_cluster(nodes, progress)
    if len(members) > 1:
        progress(f"cluster of {len(members)} emulated nodes: {', '.join(n.name for n in members)} "
                 "(every container runs on this machine)")
    if procs.running_pid(PATHS.run_dir, PVE) is None:
        code = emulator_code()
        procs.start(PATHS.run_dir, PATHS.log_dir, PVE)
        (PATHS.run_dir / EMULATOR_CODE_FILE).write_text(code + "\n")
    moved = s3.migrate_from_moto(STATE_STORE)
    if moved is not None:
        progress(f"s3 state store: moved {len(moved)} objects ({', '.join(moved) or 'none'}) from the old "
                 f"in-memory store (moto) to {STATE_STORE.data_dir}, once")
    procs.start(PATHS.run_dir, PATHS.log_dir, STS)
    progress(f"s3 state store {STATE_STORE.endpoint} (SeaweedFS, objects in {STATE_STORE.data_dir})")
    STATE_STORE.start()
    progress(f"registry {REGISTRY.url} (every host's Docker Hub mirror)")
    REGISTRY.start(PATHS.run_dir, PATHS.log_dir)
    return booting


def _boot(status_now: dict, progress: Progress) -> None:
    """Start the CTs with onboot=1 in their startup order through the API (POST startall), say which."""
    started = time.monotonic()
    lines = pve_boot.call_startall(status_now["api_url"], status_now["node"], status_now["ca_file"],
                                   f"{status_now['token_id']}={status_now['token_secret']}")
    for line in lines:
        progress(f"boot: {line}")
    progress(f"boot: {'done' if lines else 'no container has onboot=1 and is stopped'} "
             f"in {time.monotonic() - started:.1f} s")


def _images_needed(progress: Progress) -> dict[str, image_recipes.Recipe]:
    """The recipes of every image a lab host runs (the others are named and left unbuilt)."""
    recipes = image_recipes.load_all()
    unused = stack_files.images_no_lab_host_runs()
    skipped = sorted(name for name, r in recipes.items()
                     if r.references and all(ref in unused for ref in r.references[:1]))
    if skipped:
        progress(f"images: not built (no lab host runs them): {', '.join(skipped)}")
    return {name: r for name, r in recipes.items() if name not in skipped}


def ensure_images(progress: Progress = _quiet, builds: int | None = None,
                  needed: dict[str, image_recipes.Recipe] | None = None, built_before: list[str] | None = None,
                  started: float | None = None) -> list[images.Outcome]:
    """Every image recipe in the registry: checked (warm), pushed from the cache, or built (cold; `builds` at once).
    built_before and started: what lab up built before its registry ran, and since when (for the summary line)."""
    started = time.monotonic() if started is None else started
    needed = _images_needed(progress) if needed is None else needed
    done = images.ensure(REGISTRY, IMAGE_CACHE, progress=lambda line: progress(f"images: {line}"), recipes=needed,
                         workers=builds)
    built = [*(built_before or []), *(o.recipe for o in done if o.built_seconds)]
    pushed = sum(len(o.pushed_tags) for o in done)
    if any(o.replaced_tags for o in done):
        # a rebuilt recipe re-tagged: without this, every recipe change would leave its old layers behind
        progress(f"images: registry garbage-collect {REGISTRY.collect_garbage(PATHS.run_dir, PATHS.log_dir)}")
    progress(f"images: {len(done)} recipes ({', '.join(r for o in done for r in o.references[:1])}) ready "
             f"in {time.monotonic() - started:.2f} s; built {len(built)}, pushed {pushed} tags")
    return done


def _check_api(status_now: dict) -> None:
    """Prove the emulator answers an authenticated call, verified against the lab's CA."""
    deadline = time.monotonic() + 20
    while True:
        try:
            resp = requests.get(f"{status_now['api_url']}/version", timeout=5, verify=status_now["ca_file"],
                                headers={"Authorization": f"PVEAPIToken={status_now['token_id']}="
                                                          f"{status_now['token_secret']}"})
            resp.raise_for_status()
            return
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"lab PVE emulator does not answer {status_now['api_url']}/version: {exc}") from exc
            time.sleep(0.2)


def down(progress: Progress = _quiet, purge: bool = False) -> list[str]:
    """Remove containers, processes, mounts and the bridge; return what could not be removed."""
    hosts = LabHosts()
    for service in (PVE, STS, REGISTRY.service(), NPM_MIRROR.service()):
        if procs.stop(PATHS.run_dir, service):
            progress(f"stopped {service.name}")
    # The state describes the containers removed below: it goes with them (no SIGTERM flush needed).
    if STATE_STORE.stop(timeout=1):
        progress("stopped s3")
    if STATE_STORE.wipe():
        progress(f"removed the Terraform state in {STATE_STORE.data_dir} (it described the containers removed here)")
    if nft_remove():
        progress(f"removed the firewall's nftables table {FIREWALL_TABLE}")
    removed = hosts.destroy_all()
    if removed:
        progress(f"destroyed containers: {', '.join(map(str, removed))}")
    # The next lab's containers get new host keys: a kept known_hosts would refuse them as changed.
    for known in sorted(PATHS.keys_dir.glob("known_hosts*")):
        known.unlink(missing_ok=True)
        progress(f"forgot the host keys in {known} (their containers are gone)")
    net.bridge_down()
    progress(f"bridge {config.BRIDGE} removed")
    # The emulator's CT configs describe containers that no longer exist.
    shutil.rmtree(PATHS.pve_dir / "state", ignore_errors=True)
    for sub in (PATHS.snapshots_root, PATHS.docker_root, PATHS.lxc_path, PATHS.run_dir, PATHS.backup_dir):
        shutil.rmtree(sub, ignore_errors=True)
    if purge:
        shutil.rmtree(PATHS.lab_dir, ignore_errors=True)
        progress(f"purged {PATHS.lab_dir} (keys, CA, tokens)")
    return [str(x) for x in hosts.find_leftovers()] + (
        [f"bridge {config.BRIDGE}"] if net.bridge_exists() else []) + (
        [f"nftables table bridge {FIREWALL_TABLE}"] if nft_table_exists() else [])


def status() -> dict:
    """Everything a script needs to drive the lab, including the lab's own token secret."""
    tokens = pve_auth.load_tokens(PATHS.pve_dir) if (PATHS.pve_dir / "tokens.json").exists() else {}
    full = tokens.get(pve_auth.FULL_TOKEN_ID, "")
    readonly = tokens.get(pve_auth.READONLY_TOKEN_ID, "")
    try:
        containers = [{"vmid": h.vmid, "hostname": h.hostname, "address": h.ip, "state": h.state}
                      for h in LabHosts().list()]
    except Exception as exc:  # noqa: BLE001 - status must print even when LXC is half set up
        containers = [{"error": str(exc)}]
    services = {
        "pve": procs.running_pid(PATHS.run_dir, PVE),
        "s3": STATE_STORE.pid(),
        "sts": procs.running_pid(PATHS.run_dir, STS),
        "registry": REGISTRY.pid(PATHS.run_dir),
        "npm_mirror": NPM_MIRROR.pid(PATHS.run_dir),
    }
    return {
        "up": bool(net.bridge_exists() and all(services.values())),
        "bridge": f"{config.BRIDGE} {config.BRIDGE_ADDRESS}/{config.PREFIX}" if net.bridge_exists() else None,
        "pids": services,
        "api_url": f"https://127.0.0.1:{PVE_PORT}/api2/json",
        "node": config.NODE,
        "nodes": [{"name": n.name, "ip": n.ip, "online": n.online} for n in cluster_nodes()]
        if (PATHS.pve_dir / "state").exists() else [],
        "ca_file": str(PATHS.pve_dir / "ca.pem"),
        "token_id": pve_auth.FULL_TOKEN_ID,
        "token_secret": full,
        "readonly_token_id": pve_auth.READONLY_TOKEN_ID,
        "readonly_token_secret": readonly,
        "s3_endpoint": f"http://127.0.0.1:{S3_PORT}",
        "s3_bucket": S3_BUCKET,
        "s3_data": str(STATE_STORE.data_dir),
        "sts_endpoint": f"http://127.0.0.1:{REJECT_PORT}",
        "deploy_key": str(PATHS.deploy_key),
        "registry": _registry_status(bool(services["registry"])),
        "npm_mirror": {"url": NPM_MIRROR.url, "running": bool(services["npm_mirror"]),
                       "storage": str(NPM_MIRROR.storage), "packages": len(NPM_MIRROR.packages()),
                       "seeds": [str(p.relative_to(ROOT)) for p in seed_lockfiles()]},
        "containers": containers,
    }


def _registry_status(running: bool) -> dict:
    """Where the registry listens, what it mirrors, and which image references it provides."""
    try:
        refs = [ref for r in image_recipes.load_all().values() for ref in r.references]
    except image_recipes.RecipeError as exc:
        refs = [f"error: {exc}"]
    return {
        "url": REGISTRY.url,
        "address": REGISTRY.address,
        "mirror_of": "docker.io",
        "ca_file": str(REGISTRY.ca_file),
        "storage": str(REGISTRY.storage),
        "image_cache": str(IMAGE_CACHE),
        "running": running,
        "images": refs,
    }


def suite_env(st: dict) -> dict[str, str]:
    """Environment the suite reads for this lab: the names inventories/lab.yml refers to."""
    key, secret = STATE_STORE.credentials()
    return {
        "PVE_TOKEN_SECRET": st["token_secret"],
        # the state store's key pair, generated by `lab up` (the homelab's come from CI secrets)
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        # The demo app's build takes its npm packages from the lab's mirror (the homelab: registry.npmjs.org).
        "APP_DEMO_NPM_REGISTRY": st["npm_mirror"]["url"],
        # the services' secrets inventories/lab.yml names (stack.secrets), generated by `lab up`
        **stack_files.ensure_service_secrets(PATHS),
    }


def print_status(st: dict) -> None:
    """Human-readable status: where each service listens and every container (no secret)."""
    def mark(pid):
        return f"running (pid {pid})" if pid else "stopped"
    print(f"bridge      {st['bridge'] or 'absent'}")
    print(f"pve api     {st['api_url']}  node {st['node']}  {mark(st['pids']['pve'])}")
    print(f"  ca file   {st['ca_file']}")
    print(f"  token     {st['token_id']} (secret: python -m lab status --json)")
    if len(st.get("nodes") or []) > 1:
        print("  cluster   " + ", ".join(f"{n['name']} {n['ip']} {'online' if n['online'] else 'OFFLINE'}"
                                      for n in st["nodes"]))
    print(f"s3 state    {st['s3_endpoint']}  bucket {st['s3_bucket']}  {mark(st['pids']['s3'])}")
    print(f"  objects   {st['s3_data']} (SeaweedFS; kept across restarts, removed by lab down)")
    print(f"sts/iam     {st['sts_endpoint']} (rejects: S3-compatible stores have no STS)  "
          f"{mark(st['pids']['sts'])}")
    reg = st["registry"]
    print(f"registry    {reg['url']}  mirror of {reg['mirror_of']}  {mark(st['pids']['registry'])}")
    print(f"  images    {', '.join(reg['images'])}")
    npm = st["npm_mirror"]
    print(f"npm mirror  {npm['url']}  {npm['packages']} packages, no uplink  {mark(st['pids']['npm_mirror'])}")
    print(f"deploy key  {st['deploy_key']}")
    print(f"containers  {len([c for c in st['containers'] if 'vmid' in c])}")
    for c in st["containers"]:
        if "vmid" in c:
            print(f"  {c['vmid']:>5}  {c['hostname']:<12} {c['address']:<15} {c['state']}")
        else:
            print(f"  error: {c['error']}")
