"""Cached debootstrap base rootfs of the lab's hosts (built once per machine).

Where things are (inside every host, i.e. inside the base rootfs):
- Docker base image for services: /opt/lab/images/labbase.tar, a plain rootfs tar (Debian 12 with
  python3, no docker/apt lists/docs). Load it with
  `docker import /opt/lab/images/labbase.tar labbase:latest`, then `docker build` `FROM labbase:latest`
  (nothing can be pulled: no registry exists).
- Local apt repo: /opt/lab/debs (every installed package's .deb, a flat `Packages` index). The only
  apt source is `deb [trusted=yes] file:/opt/lab/debs ./`, lists already fetched, so
  `apt: name=rsync state=present` works offline after rsync was removed.

On the machine: the rootfs is cached at LAB_CACHE/base/rootfs (default /var/cache/homelab-lab);
LAB_CACHE/base/BUILD records the build's package list; a changed list rebuilds. The build runs in a
temp dir renamed into place at the end, so an interrupted build never leaves a half rootfs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lab import config

BUILD_VERSION = "lab-base-3"

PACKAGES = (
    "systemd-sysv", "dbus", "openssh-server", "rsync", "python3", "python3-apt", "curl",
    "iproute2", "iputils-ping", "procps", "sudo", "ca-certificates", "netbase", "less",
    "docker.io", "iptables", "docker-compose", "python3-docker", "python3-yaml", "git",
)

# The Docker base image is the base rootfs minus these packages' files and the paths below.
IMAGE_DROP_PACKAGES = (
    "docker.io", "containerd", "runc", "tini", "docker-compose", "git", "git-man", "perl",
    "perl-modules-5.36", "libperl5.36", "liberror-perl", "openssh-server", "openssh-sftp-server",
    "openssh-client", "systemd", "systemd-sysv", "libsystemd-shared", "libnss-systemd", "libpam-systemd", "dbus",
    "dbus-daemon", "dbus-bin", "dbus-system-bus-common", "dbus-session-bus-common", "iptables",
    "python3-docker", "python3-dockerpty", "python3-compose", "python3-apt", "sudo",
)
IMAGE_EXCLUDES = (
    "./var/lib/docker", "./var/lib/containerd", "./usr/share/doc", "./usr/share/man",
    "./usr/share/info", "./usr/share/locale", "./usr/share/zoneinfo/right",
    "./usr/share/zoneinfo/posix", "./usr/share/bash-completion", "./var/lib/apt/lists/*",
    "./var/cache/apt/*", "./var/cache/debconf/*-old", "./opt/lab", "./etc/ssh/ssh_host_*",
    "./usr/share/icons", "./usr/lib/python3*/test", "./usr/share/lintian",
)

SSHD_CONF = """\
# lab: root login by key only; host keys are generated per host at create.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
"""

MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service",
    "apt-daily-upgrade.service", "e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer",
    "systemd-journald-audit.socket", "getty@tty1.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "systemd-sysusers.service", "console-getty.service", "man-db.timer", "dpkg-db-backup.timer",
)


PHASES = {"Retrieving": "download", "Validating": "download", "Extracting": "unpack",
          "Unpacking": "unpack", "Configuring": "configure", "Installing": "install"}


def log(msg: str) -> None:
    """Print one progress line (the cold build takes minutes)."""
    print(f"[lab base] {msg}", file=sys.stderr, flush=True)


def build_spec(packages: tuple[str, ...] = PACKAGES) -> str:
    """The marker's content: build version and sorted package list."""
    return BUILD_VERSION + "\n" + "\n".join(sorted(packages)) + "\n"


def is_cached(paths: config.LabPaths = config.PATHS, packages: tuple[str, ...] = PACKAGES) -> bool:
    """True when the cached rootfs exists and was built from this package list."""
    marker = paths.base_marker
    return (paths.base_rootfs / "etc/os-release").exists() and marker.exists() and (
        marker.read_text() == build_spec(packages)
    )


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources"),
                  suite: str = config.SUITE) -> str:
    """The machine's own Debian mirror URL for suite (never hard-coded)."""
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(
                re.match(r"(\S+):\s*(.*)", line).groups()
                for line in stanza.splitlines()
                if re.match(r"\S+:", line) and not line.startswith("#")
            )
            if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if parts[:1] == ["deb"] and suite in parts:
                    return next(p for p in parts[1:] if "://" in p)
    raise RuntimeError(f"no Debian {suite} mirror found in the machine's apt sources")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, raise with its output on failure."""
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr or res.stdout}")
    return res


def _debootstrap(target: Path, packages: tuple[str, ...], mirror: str) -> None:
    """Run debootstrap, streaming throttled progress lines."""
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
           config.SUITE, str(target), mirror]
    log(" ".join(cmd))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    phase, last = "", 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        word = line.split(" ")[1] if line.startswith("I: ") and " " in line else ""
        word = PHASES.get(word, word)
        now = time.monotonic()
        if word != phase or now - last > 5 or line.startswith(("E:", "W:")):
            log(f"{now - start:5.0f}s {line}")
            phase, last = word, now
    if proc.wait() != 0:
        raise RuntimeError("debootstrap failed:\n" + "\n".join(tail))


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file inside the rootfs being built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _local_repo(root: Path) -> None:
    """Keep every installed .deb in a flat repo inside the base; make it the only apt source."""
    debs = root / config.DEBS_DIR_IN_CT.lstrip("/")
    debs.mkdir(parents=True, exist_ok=True)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        shutil.move(str(deb), debs / deb.name)
    installed = _run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package}\n"]).stdout.split()
    have = {p.name.split("_")[0] for p in debs.glob("*.deb")}
    missing = sorted(set(installed) - have)
    if missing:
        raise RuntimeError(f"no .deb kept for installed packages: {missing[:10]}")
    log(f"local apt repo: {len(have)} .deb in {config.DEBS_DIR_IN_CT}")
    index = _run(["dpkg-scanpackages", "--multiversion", "."], cwd=debs).stdout
    _write(debs / "Packages", index)
    for stale in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").glob("*")]:
        stale.unlink(missing_ok=True)
    _write(root / "etc/apt/sources.list.d/lab.list",
           f"deb [trusted=yes] file:{config.DEBS_DIR_IN_CT} ./\n")
    _write(root / "etc/apt/apt.conf.d/90lab", 'Acquire::Languages "none";\n'
           'APT::Install-Recommends "false";\nAPT::Get::Update::SourceListWarnings "false";\n')
    _run(["chroot", str(root), "apt-get", "update", "-q"])


def _configure(root: Path) -> None:
    """Static net, key-only root SSH, quiet systemd, DNS kept inside the lab's range."""
    _write(root / "etc/network/interfaces",
           "auto lo\niface lo inet loopback\n\n# address, gateway: set by LXC config\n"
           "iface eth0 inet manual\n")
    _write(root / "etc/resolv.conf", f"nameserver {config.BRIDGE_ADDRESS}\noptions timeout:1\n")
    _write(root / "etc/hostname", "base\n")
    _write(root / "etc/machine-id", "")
    _write(root / "etc/ssh/sshd_config.d/lab.conf", SSHD_CONF)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/systemd/journald.conf.d/lab.conf",
           "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n")
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    (root / "var/lib/docker").mkdir(parents=True, exist_ok=True)


def _installed(root: Path, names: tuple[str, ...]) -> list[str]:
    """The subset of names installed in the rootfs."""
    out = _run(["chroot", str(root), "dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n"]).stdout
    have = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    return [n for n in names if n in have]


def _image_tar(root: Path) -> None:
    """Write the Docker base image tar (rootfs minus docker, apt lists, docs)."""
    tar = root / config.IMAGE_TAR_IN_CT.lstrip("/")
    tar.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / "labbase.tar.tmp"
    drop = root.parent / "labbase.exclude"
    files = _run(["chroot", str(root), "dpkg", "-L", *_installed(root, IMAGE_DROP_PACKAGES)]).stdout
    # only files and links: a listed directory (/usr/bin) would drop everything under it
    keep_out = []
    for f in files.splitlines():
        if f.startswith(("/bin/", "/sbin/", "/lib/", "/lib64/")):
            f = "/usr" + f  # merged /usr: the files live under usr/
        path = root / f.lstrip("/")
        # never a directory, nor a link to one (/lib -> usr/lib under merged /usr)
        if f.startswith("/") and not path.is_dir():
            keep_out.append(f".{f}")
    drop.write_text("\n".join([*IMAGE_EXCLUDES, *keep_out]) + "\n")
    cmd = ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-cf", str(tmp),
           f"--exclude-from={drop}", "."]
    _run(cmd)
    shutil.move(str(tmp), tar)
    drop.unlink()
    log(f"docker base image tar: {config.IMAGE_TAR_IN_CT} ({tar.stat().st_size >> 20} MiB), "
        f"tag {config.IMAGE_TAG}")


def build_base(paths: config.LabPaths = config.PATHS, packages: tuple[str, ...] = PACKAGES,
               force: bool = False) -> float:
    """Build the base rootfs once (atomic); return seconds spent (0.0 when cached)."""
    if not force and is_cached(paths, packages):
        return 0.0
    start = time.monotonic()
    paths.base_dir.mkdir(parents=True, exist_ok=True)
    for stale in paths.base_dir.glob("rootfs.*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = paths.base_dir / f"rootfs.build-{os.getpid()}"
    try:
        log(f"building base rootfs in {tmp} (cold build: a few minutes)")
        _debootstrap(tmp, packages, debian_mirror())
        log(f"{time.monotonic() - start:5.0f}s debootstrap done; configuring")
        _local_repo(tmp)
        _configure(tmp)
        _image_tar(tmp)
        paths.base_marker.unlink(missing_ok=True)
        if paths.base_rootfs.exists():
            old = paths.base_dir / f"rootfs.old-{os.getpid()}"
            paths.base_rootfs.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(paths.base_rootfs)
        paths.base_marker.write_text(build_spec(packages))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    took = time.monotonic() - start
    log(f"base rootfs ready at {paths.base_rootfs} in {took:.0f}s")
    return took


if __name__ == "__main__":
    build_base(force="--force" in sys.argv)
