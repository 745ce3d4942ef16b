"""A lab host's root file system as one tree: written to a vzdump tar, and put back from an extracted one.

A host's rootfs is an overlay (the cached base below, the host's delta above) plus its docker dir, which
LXC bind-mounts at /var/lib/docker (on the homelab it is part of the rootfs, so a backup holds it). To
archive, a read-only overlay of a snapshot's delta (or the stopped host's own) over the base is mounted
with the docker dir bound in, and tar reads it as pve-container's VZDump/LXC.pm does (`--one-file-system`,
each mount point named). To restore, the host's own overlay is mounted and rsync'd to the extracted tree
(deleted files become overlay whiteouts, unchanged ones stay in the base), and its docker dir likewise.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# pve-storage Plugin.pm COMMON_TAR_FLAGS, then VZDump/LXC.pm's own flags.
TAR_FLAGS = ("--totals", "--sparse", "--numeric-owner", "--acls", "--xattrs", "--xattrs-include=user.*",
             "--xattrs-include=security.capability", "--warning=no-file-ignored", "--warning=no-xattr-write",
             "--one-file-system")
RSYNC = ("rsync", "-aHAX", "--numeric-ids", "--delete")
DOCKER_IN_CT = "var/lib/docker"


class ArchiveError(RuntimeError):
    """Writing or restoring an archive failed (the message is PVE's `command '...' failed: ...`)."""


def _run(cmd: list[str], timeout: float = 600) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ArchiveError(f"command '{shlex.join(cmd)}' failed: exit code {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")


@contextmanager
def _mounted(kind: str, options: str, source: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lab-vzdump-mnt-") as mnt:
        _run(["mount", "-t", kind, "-o", options, source, mnt])
        try:
            yield Path(mnt)
        finally:
            subprocess.run(["umount", mnt], capture_output=True, timeout=120, check=False)


@contextmanager
def _bound(source: Path, target: Path) -> Iterator[None]:
    _run(["mount", "--bind", "-o", "ro", str(source), str(target)])
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, timeout=120, check=False)


def _skeleton(skel: Path, delta: Path, base: Path) -> None:
    """The bind target /var/lib/docker as a top layer (it exists even in a host never started); the merged
    view takes a directory's owner and mode from its top layer, so each one copies the host's own."""
    rel = Path(".")
    for part in ("", *Path(DOCKER_IN_CT).parts):
        rel = rel / part
        here = skel / rel
        here.mkdir(exist_ok=True)
        source = next((d / rel for d in (delta, base) if (d / rel).is_dir()), None)
        if source is not None:
            st = source.stat()
            os.chown(here, st.st_uid, st.st_gid)
            here.chmod(st.st_mode & 0o7777)


@contextmanager
def rootfs_view(base: Path, delta: Path, docker: Path) -> Iterator[Path]:
    """A read-only view of a host's whole rootfs (delta over base, the docker dir at /var/lib/docker)."""
    with ExitStack() as stack:
        skel = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lab-vzdump-skel-")))
        _skeleton(skel, delta, base)
        mnt = stack.enter_context(_mounted("overlay", f"lowerdir={skel}:{delta}:{base}", "overlay"))
        stack.enter_context(_bound(docker, mnt / DOCKER_IN_CT))
        yield mnt


def write_tar(view: Path, extra: Path, target: Path, compressor: list[str] | None, log) -> None:
    """tar the view (with ./etc/vzdump/ from `extra`) through the compressor into target; logs tar's totals."""
    tar = ["tar", "cpf", "-", *TAR_FLAGS, f"--directory={extra}", "./etc/vzdump/pct.conf",
           "./etc/vzdump/pct.fw", f"--directory={view}", "./", f"./{DOCKER_IN_CT}"]
    shown = shlex.join(tar) + (f" | {shlex.join(compressor)}" if compressor else "") + f" >{shlex.quote(str(target))}"
    # both stderrs go to files: a pipe tar filled with warnings would block it while zstd waits for its input
    with open(target, "wb") as out, tempfile.TemporaryFile() as tar_err, tempfile.TemporaryFile() as comp_err:
        producer = subprocess.Popen(tar, stdout=subprocess.PIPE if compressor else out, stderr=tar_err)
        consumer = None
        if compressor:
            consumer = subprocess.Popen(compressor, stdin=producer.stdout, stdout=out, stderr=comp_err)
            producer.stdout.close()  # the compressor holds the pipe: tar sees EPIPE when it dies
            consumer.wait()
        producer.wait()
        errors = []
        for handle in (tar_err, comp_err):
            handle.seek(0)
            errors += handle.read().decode(errors="replace").splitlines()
    for line in errors:
        log(line)
    # PVE runs the pipeline with pipefail: the last command that failed gives the exit code
    failed = [c for c in (producer.returncode, consumer.returncode if consumer else 0) if c]
    if failed:
        raise ArchiveError(f"command '{shown}' failed: exit code {failed[-1]}")


def restore_tree(base: Path, delta: Path, work: Path, docker: Path, tree: Path) -> None:
    """Make a stopped host's files those of an extracted archive (rootfs through its overlay, docker dir apart)."""
    with _mounted("overlay", f"lowerdir={base},upperdir={delta},workdir={work}", "overlay") as mnt:
        _run([*RSYNC, f"--exclude=/{DOCKER_IN_CT}/*", f"{tree}/", f"{mnt}/"], timeout=1800)
    source = tree / DOCKER_IN_CT
    source.mkdir(parents=True, exist_ok=True)
    _run([*RSYNC, f"{source}/", f"{docker}/"], timeout=1800)
