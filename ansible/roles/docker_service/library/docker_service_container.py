#!/usr/bin/python
"""Ansible module: build a service's image on the host and keep one container of it running."""

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_service_container
short_description: Build a service image from a directory on the host and keep one container of it running
description:
  - What the docker_service role used to do in six tasks, in one module run. Each Ansible task starts
    Python on the host and imports ansible.module_utils (host CPU each time), and a no-change
    deploy is mostly such read-only probes.
  - Docker CLI only (no Docker SDK on the hosts). Writes the build context's files that differ,
    makes sure the daemon runs and starts at boot, imports the base image from a rootfs tar when it is
    absent, builds the image (a cached build keeps its id), and replaces the container only when its
    spec (image id, ports, env, restart, init) moved.
  - Supports check mode (nothing is written, started, imported, built or replaced) and diff mode (the
    build context's files).
options:
  name: {description: Container name., type: str, required: true}
  image: {description: Image tag to build., type: str, required: true}
  build_dir: {description: Build context on the host, with its Dockerfile., type: path, required: true}
  files:
    description: Files of the build context (name relative to build_dir, text content), written root-owned 0644 when different.
    type: dict
    default: {}
  base_image: {description: Base image passed as --build-arg BASE_IMAGE., type: str, required: true}
  base_image_tar: {description: Rootfs tar imported as base_image when it is absent., type: path, default: ""}
  ports: {description: Published ports, host:container., type: list, elements: str, default: []}
  env: {description: Environment of the container., type: dict, default: {}}
  restart_policy: {description: Docker restart policy., type: str, default: unless-stopped}
  init: {description: Run a tiny init as PID 1., type: bool, default: true}
"""

RETURN = r"""
image_id: {description: Id of the image the container runs., type: str, returned: always}
spec: {description: Hash of the container's spec (label homelab.spec)., type: str, returned: always}
actions: {description: What changed, in order., type: list, elements: str, returned: always}
"""

import hashlib
import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

SPEC_LABEL = "homelab.spec"
DAEMON_WAIT = 30.0


class DockerError(Exception):
    """A docker or systemctl command failed: what ran, its rc and its last error line."""

    def __init__(self, argv: list[str], rc: int, stderr: str):
        self.argv, self.rc = argv, rc
        self.stderr = (stderr or "").strip()
        last = self.stderr.splitlines()[-1] if self.stderr else "no error output"
        super().__init__(f"`{' '.join(argv)}` failed (rc={rc}): {last}")


class Host:
    """Runs commands on the host through AnsibleModule.run_command."""

    def __init__(self, module: AnsibleModule):
        self.module = module

    def run(self, *argv: str, env: dict | None = None) -> tuple[int, str, str]:
        """rc, stdout, stderr of a command (never raises)."""
        return self.module.run_command(list(argv), environ_update=env or {})

    def must(self, *argv: str, env: dict | None = None) -> str:
        """stdout of a command that has to succeed."""
        rc, out, err = self.run(*argv, env=env)
        if rc != 0:
            raise DockerError(list(argv), rc, err)
        return out.strip()


def spec_hash(image_id: str, params: dict) -> str:
    """The container's wanted state as one comparable value (label homelab.spec)."""
    spec = {"image": image_id, "ports": list(params["ports"]), "env": {k: str(v) for k, v in params["env"].items()},
            "restart": params["restart_policy"], "init": bool(params["init"])}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def run_argv(params: dict, spec: str) -> list[str]:
    """`docker run` of the service's container."""
    argv = ["docker", "run", "--detach", "--name", params["name"], "--restart", params["restart_policy"],
            "--label", f"{SPEC_LABEL}={spec}"]
    if params["init"]:
        argv.append("--init")
    argv += [f"--publish={port}" for port in params["ports"]]
    argv += [f"--env={name}={value}" for name, value in sorted(params["env"].items())]
    return argv + [params["image"]]


def image_id(host: Host, image: str) -> str:
    """Id of a local image, '' when absent."""
    rc, out, _ = host.run("docker", "image", "inspect", "--format", "{{.Id}}", image)
    return out.strip() if rc == 0 else ""


def ensure_daemon(host: Host, check: bool, actions: list[str]) -> bool:
    """Docker starts at boot and runs now; False when, in check mode, it does not run (nothing to probe)."""
    if host.run("systemctl", "is-enabled", "--quiet", "docker")[0] != 0:
        actions.append("enable docker at boot")
        if not check:
            host.must("systemctl", "enable", "docker")
    if host.run("docker", "info", "--format", "{{.ServerVersion}}")[0] == 0:
        return True
    actions.append("start docker")
    if check:
        return False
    host.must("systemctl", "start", "docker")
    deadline = time.monotonic() + DAEMON_WAIT
    while host.run("docker", "info", "--format", "{{.ServerVersion}}")[0] != 0:
        if time.monotonic() > deadline:
            raise DockerError(["docker", "info"], 1, f"the Docker daemon did not answer {DAEMON_WAIT:g} s after start")
        time.sleep(0.2)
    return True


def context_path(build_dir: str, name: str) -> str:
    """Path of a build-context file; names that leave build_dir are refused."""
    path = os.path.normpath(os.path.join(build_dir, name))
    if os.path.isabs(name) or not path.startswith(os.path.normpath(build_dir) + os.sep):
        raise DockerError(["write", name], 1, f"file name {name!r} is not inside {build_dir}")
    return path


def write_context(build_dir: str, files: dict, check: bool, actions: list[str]) -> list[dict]:
    """Write the files whose content or mode differs (root-owned 0644, atomically); return their diffs."""
    diffs = []
    if files and not os.path.isdir(build_dir):
        actions.append(f"create {build_dir}")
        if not check:
            os.makedirs(build_dir, mode=0o755, exist_ok=True)
    for name, content in sorted(files.items()):
        path = context_path(build_dir, name)
        wanted = content.encode()
        try:
            with open(path, "rb") as handle:
                before = handle.read()
            stat = os.stat(path)
            attrs_ok = stat.st_mode & 0o7777 == 0o644 and stat.st_uid == 0 and stat.st_gid == 0
        except FileNotFoundError:
            before, attrs_ok = None, False
        if before == wanted and attrs_ok:
            continue
        actions.append(f"write {path}")
        diffs.append({"before_header": path, "after_header": path,
                      "before": (before or b"").decode(errors="replace"), "after": content})
        if not check:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(wanted)
            os.chmod(tmp, 0o644)
            os.chown(tmp, 0, 0)
            os.replace(tmp, path)
    return diffs


def converge(host: Host, params: dict, check: bool) -> dict:
    """Bring build context, daemon, base image, image and container to the wanted state; say what changed."""
    actions: list[str] = []
    diffs = write_context(params["build_dir"], params.get("files") or {}, check, actions)
    if not ensure_daemon(host, check, actions):
        return {"changed": True, "actions": actions + ["build and run (daemon not running)"], "image_id": "",
                "spec": "", "diff": diffs}
    base, tar = params["base_image"], params["base_image_tar"]
    # No registry in the lab: the base is a rootfs tar shipped in every host. Elsewhere (no tar),
    # `docker build` pulls the base as usual.
    if not image_id(host, base) and tar and os.path.isfile(tar):
        actions.append(f"import {base} from {tar}")
        if not check:
            host.must("docker", "import", tar, base)
    before = image_id(host, params["image"])
    current = before
    if check:
        if not before:
            actions.append(f"build {params['image']}")
    else:
        # A cached build gives the same image id; building every run also repairs a run that
        # failed between the copy of the sources and the build.
        current = host.must("docker", "build", "--quiet", "--build-arg", f"BASE_IMAGE={base}",
                            "--label", f"homelab.service={params['name']}", "--tag", params["image"],
                            params["build_dir"], env={"DOCKER_BUILDKIT": "0"})
        if current != before:
            actions.append(f"build {params['image']} ({current[:19]})")
    spec = spec_hash(current, params)
    rc, out, _ = host.run("docker", "container", "inspect", "--format",
                          '{{index .Config.Labels "' + SPEC_LABEL + '"}} {{.State.Running}}', params["name"])
    exists = rc == 0
    if not (exists and out.split() == [spec, "true"]):
        actions.append(("replace" if exists else "start") + f" container {params['name']}")
        if not check:
            if exists:
                host.must("docker", "rm", "--force", params["name"])
            host.must(*run_argv(params, spec))
    return {"changed": bool(actions), "actions": actions, "image_id": current, "spec": spec, "diff": diffs}


def main() -> None:
    """Module entry point."""
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "image": {"type": "str", "required": True},
            "build_dir": {"type": "path", "required": True},
            "files": {"type": "dict", "default": {}},
            "base_image": {"type": "str", "required": True},
            "base_image_tar": {"type": "path", "default": ""},
            "ports": {"type": "list", "elements": "str", "default": []},
            "env": {"type": "dict", "default": {}},
            "restart_policy": {"type": "str", "default": "unless-stopped"},
            "init": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        result = converge(Host(module), module.params, module.check_mode)
    except DockerError as exc:
        module.fail_json(msg=str(exc), cmd=exc.argv, rc=exc.rc, stderr=exc.stderr)
    except OSError as exc:
        module.fail_json(msg=f"writing the build context {module.params['build_dir']} failed: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
