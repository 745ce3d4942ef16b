"""A lab host pulls upstream image references from the lab registry, and npm packages from the lab's npm mirror."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import config, orchestrate, procs
from lab.images import publish
from lab.images import recipe as image_recipes
from lab.npm_mirror import NpmMirror

pytestmark = pytest.mark.lab

VMID = 957
NPM_SEED = Path(__file__).resolve().parent / "fixtures" / "npm-seed"


class Host:
    """One lab host reached over SSH with a test key."""

    def __init__(self, ip: str, key: Path, known: Path):
        """Bind to the host's address and the test's key."""
        self.ip, self.key, self.known = ip, key, known

    def run(self, command: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        """ssh root@ip command."""
        cmd = ["ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={self.known}",
               "-o", "ConnectTimeout=5", "-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=ERROR",
               f"root@{self.ip}", command]
        res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"ssh {self.ip} {command!r} exited {res.returncode}: {res.stderr}{res.stdout}")
        return res


@pytest.fixture(scope="module")
def images(lab_hosts) -> dict[str, image_recipes.Recipe]:
    """The registry running on the bridge and holding every recipe's image (warm: a few ms)."""
    orchestrate.REGISTRY.start(orchestrate.PATHS.run_dir, orchestrate.PATHS.log_dir)
    orchestrate.ensure_images()
    return {r.repository: r for r in image_recipes.load_all().values()}


@pytest.fixture(scope="module")
def host(lab_hosts, images, tmp_path_factory) -> Iterator[Host]:
    """A fresh lab host with dockerd ready (destroyed afterwards, even on failure)."""
    tmp = tmp_path_factory.mktemp("mirror")
    key = tmp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    if lab_hosts.exists(VMID):  # a crashed earlier run
        lab_hosts.destroy(VMID)
    ip = f"198.18.0.{VMID - 800}"
    try:
        lab_hosts.create(VMID, f"t{VMID}", ip, 24, "198.18.0.1", None,
                         key.with_suffix(".pub").read_text(), memory=1024)
        lab_hosts.start(VMID)
        lab_hosts.wait_ssh(VMID, timeout=30)
        h = Host(ip, key, tmp / "known_hosts")
        deadline = time.monotonic() + 30
        while h.run("docker info >/dev/null 2>&1", check=False).returncode != 0:
            assert time.monotonic() < deadline, "dockerd not ready 30 s after the host's start"
            time.sleep(0.3)
        yield h
    finally:
        if lab_hosts.exists(VMID):
            lab_hosts.destroy(VMID)


def _pull(host: Host, images: dict, repository: str, tag: str) -> str:
    """Pull repository:tag as the roles write it; assert the lab registry served it; return the reference."""
    reference = f"{repository.removeprefix('library/')}:{tag}"
    host.run(f"docker pull -q {reference}")
    served = publish.registry_digest(orchestrate.REGISTRY, repository, tag)
    repo_digests = host.run(f"docker image inspect --format '{{{{json .RepoDigests}}}}' {reference}").stdout
    # only the lab registry has this digest: it is the manifest `lab up` built and pushed
    assert served and served in repo_digests, f"{reference}: host has {repo_digests.strip()}, lab registry serves {served}"
    return reference


def test_dockerd_takes_the_lab_registry_as_docker_hub_mirror(host):
    """daemon.json (written before dockerd's first start) names the lab registry; its CA is trusted."""
    mirrors = host.run("docker info --format '{{json .RegistryConfig.Mirrors}}'").stdout
    assert orchestrate.REGISTRY.url in mirrors
    host.run(f"test -s /etc/docker/certs.d/{orchestrate.REGISTRY.address}/ca.crt")


def test_a_reference_the_lab_does_not_provide_fails_fast_instead_of_downloading(host):
    """dockerd falls back to Docker Hub, which no lab host can reach: the pull fails, quickly."""
    started = time.monotonic()
    res = host.run("docker pull -q traefik:v0.0.0-not-in-the-lab", check=False, timeout=120)
    assert res.returncode != 0, res.stdout
    assert time.monotonic() - started < 30, f"a failing pull took {time.monotonic() - started:.0f} s"


def test_traefik_pull_comes_from_the_lab_registry_and_is_the_real_traefik(host, images):
    """docker pull traefik:<tag> → the lab's image; docker run --rm traefik:<tag> version prints its real version."""
    recipe = images["library/traefik"]
    for tag in recipe.tags:
        reference = _pull(host, images, recipe.repository, tag)
        out = host.run(f"docker run --rm {reference} version").stdout
        assert re.search(rf"Version:\s+{re.escape(recipe.version)}\b", out), out
    host.run(f"docker rmi -f {' '.join(recipe.references)} >/dev/null")


def test_postgres_keeps_the_official_image_contract(host, images):
    """postgres:15 inits an empty volume with POSTGRES_* env and initdb.d scripts; answers with the password."""
    recipe = images["library/postgres"]
    reference = _pull(host, images, recipe.repository, recipe.tags[0])
    host.run("docker network create labtest-pg >/dev/null && docker volume create labtest-pg >/dev/null"
             " && mkdir -p /root/labtest-initdb && echo 'CREATE TABLE seeded (x int); INSERT INTO seeded VALUES (42);'"
             " > /root/labtest-initdb/01-seed.sql")
    try:
        host.run("docker run -d --name labtest-pg --network labtest-pg -e POSTGRES_PASSWORD=lab-test-pw"
                 " -e POSTGRES_USER=app -e POSTGRES_DB=appdb -v labtest-pg:/var/lib/postgresql/data"
                 f" -v /root/labtest-initdb:/docker-entrypoint-initdb.d:ro {reference} >/dev/null")
        deadline = time.monotonic() + 60
        while host.run("docker exec labtest-pg pg_isready -h labtest-pg -U app -q", check=False).returncode:
            assert time.monotonic() < deadline, host.run("docker logs labtest-pg", check=False).stderr[-1500:]
            time.sleep(0.5)
        query = ("docker run --rm --network labtest-pg -e PGPASSWORD={pw} --entrypoint psql "  # nosec B608 # a fixed query
                 f"{reference} -h labtest-pg -U app -d appdb -Atc 'SELECT x FROM seeded'")
        assert host.run(query.format(pw="lab-test-pw")).stdout.strip() == "42"
        wrong = host.run(query.format(pw="wrong"), check=False)
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
        version = host.run(f"docker run --rm --entrypoint postgres {reference} --version").stdout
        assert f"PostgreSQL) {recipe.version}." in version
    finally:
        host.run("docker rm -f labtest-pg; docker volume rm labtest-pg; docker network rm labtest-pg;"
                 " rm -rf /root/labtest-initdb", check=False)


def test_node_image_has_the_node_its_tag_names(host, images):
    """node:<major>-bookworm-slim runs the Node.js major its tag names, with npm and user node."""
    recipe = images["library/node"]
    reference = _pull(host, images, recipe.repository, recipe.tags[0])
    out = host.run(f"docker run --rm {reference} sh -c 'node --version; npm --version; id -u node'").stdout.split()
    assert out[0] == f"v{recipe.version}" and recipe.tags[0].startswith(out[0][1:].split(".")[0] + "-")
    assert re.fullmatch(r"\d+\.\d+\.\d+", out[1]) and out[2] == "1000"
    # the official entrypoint: a script file as first argument runs with node
    host.run("mkdir -p /root/labtest-node && echo 'console.log(21 * 2)' > /root/labtest-node/app.js")
    try:
        ran = host.run(f"docker run --rm -v /root/labtest-node:/app -w /app {reference} app.js").stdout
        assert ran.strip() == "42"
    finally:
        host.run("rm -rf /root/labtest-node", check=False)


@pytest.fixture
def npm_mirror(tmp_path) -> Iterator[NpmMirror]:
    """A mirror on the bridge, seeded on the machine from tests/lab/fixtures/npm-seed (stopped and removed after)."""
    with socket.socket() as sock:
        sock.bind((config.BRIDGE_ADDRESS, 0))
        port = sock.getsockname()[1]
    mirror = NpmMirror(config.BRIDGE_ADDRESS, port, tmp_path / "npm" / "storage", tmp_path / "npm" / "state")
    run, log = tmp_path / "npm" / "run", tmp_path / "npm" / "log"
    try:
        mirror.seed([NPM_SEED / "package-lock.json"], run, log)
        mirror.start(run, log)
        yield mirror
    finally:
        mirror.stop(run)
        procs.stop(run, mirror.service("npm-mirror-seed", mirror.state_dir / "verdaccio-seed.yaml"))


def test_npm_ci_in_a_docker_build_on_a_host_comes_from_the_lab_mirror(host, images, npm_mirror):
    """A Dockerfile FROM node:<tag> runs `npm ci` against the mirror; an unseeded package is a 404, not a download."""
    node = images["library/node"].references[0]
    host.run("rm -rf /root/labtest-npm && mkdir -p /root/labtest-npm")
    subprocess.run(["scp", "-q", "-i", str(host.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "-o", f"UserKnownHostsFile={host.known}", "-o", "StrictHostKeyChecking=accept-new",
                    *(str(NPM_SEED / name) for name in ("package.json", "package-lock.json", "Dockerfile")),
                    f"root@{host.ip}:/root/labtest-npm/"], check=True, timeout=30)
    try:
        host.run(f"docker build -q -t labtest-npm --build-arg NODE_IMAGE={node} "
                 f"--build-arg NPM_REGISTRY={npm_mirror.url} /root/labtest-npm", timeout=300)
        assert host.run("docker run --rm labtest-npm").stdout.strip() == "deps ok"
        missing = host.run(f"docker run --rm {node} npm view left-pad version --registry {npm_mirror.url}",
                           check=False)
        assert missing.returncode != 0 and "404" in missing.stderr, missing.stderr[-500:]
    finally:
        host.run("docker rmi -f labtest-npm; rm -rf /root/labtest-npm", check=False)
