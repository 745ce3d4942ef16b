"""POST /nodes/{node}/vzdump: backups of CTs as pve-manager's PVE/VZDump.pm and pve-container's VZDump/LXC.pm take them.

The task log, the archive's name and contents (the CT's whole rootfs plus ./etc/vzdump/pct.conf), the
`.log` and `.notes` beside it, the `backup` lock and the errors are PVE's. Modes: snapshot (a temporary
`vzdump` snapshot, the CT frozen while it is taken), suspend (the CT frozen while its files are copied),
stop (the CT stopped for the copy and started again); a stopped CT is always backed up in stop mode.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import threading
import time
from pathlib import Path

from . import fwfile
from . import storage as st
from .api_lxc import start_ct, stop_ct
from .api_snapshot import remove_lock, set_lock
from .auth import check
from .errors import TaskFailure, param_error
from .formats import split_list
from .routes import Call, route
from .state import render_conf

COMPRESSORS = {"zstd": (["zstd", "--threads=1"], ".zst"), "gzip": (["gzip", "--rsyncable"], ".gz"),
               "lzo": (["lzop"], ".lzo"), "1": (["lzop"], ".lzo")}
NOTES_VARS = ("cluster", "guestname", "node", "vmid")
SUSPEND_SNAPSHOT = "vzdump-suspend"  # the lab's copy of a suspended CT (PVE rsyncs to a temp dir)
_JOB_LOCK = threading.Lock()  # VZDump.pm getlock: one backup job at a time on a node


def verify_notes_template(template: str) -> None:
    """VZDump.pm $verify_notes_template: only \\n, \\\\ and {{cluster|guestname|node|vmid}}."""
    if "\n" in template:
        raise ValueError("contains a line feed")
    problems = [f"escape sequence '\\{m.group(1)}' at char {m.start()}"
                for m in re.finditer(r"\\(.)", template) if m.group(1) not in ("n", "\\")]
    problems += [f"variable '{m.group(1)}' at char {m.start(1)}"
                 for m in re.finditer(r"\{\{([^\s{}]+)\}\}", template) if m.group(1) not in NOTES_VARS]
    if problems:
        raise ValueError("found unknown: " + ", ".join(problems))


def generate_notes(template: str, values: dict) -> str:
    """VZDump.pm $generate_notes: unescape, then fill the variables."""
    text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else "\\", template)
    return re.sub(r"\{\{(cluster|guestname|node|vmid)\}\}", lambda m: str(values[m.group(1)]), text)


def command_line(params: dict) -> str:
    """pve-guest-common VZDump/Common.pm command_line: `vzdump <vmids> --opt value ...`."""
    cmd = "vzdump"
    if params.get("vmid"):
        cmd += " " + " ".join(split_list(str(params["vmid"])))
    for key in sorted(params):
        if key in ("id", "vmid", "starttime", "dow", "stdout", "enabled"):
            continue
        cmd += f" --{key} {shlex.quote(str(params[key]))}"
    return cmd


def format_size(size: int) -> str:
    """VZDump.pm format_size."""
    kb, mb = size / 1024, size / 1024 / 1024
    if kb < 1024:
        return f"{int(kb)}KB"
    if mb < 1024:
        return f"{int(mb)}MB"
    gb = mb / 1024
    return f"{gb:.2f}GB" if gb < 1024 else f"{gb / 1024:.2f}TB"


def format_time(seconds: float) -> str:
    """VZDump.pm format_time: HH:MM:SS."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def stamp(when: float | None = None) -> str:
    """strftime("%F %H:%M:%S", localtime())."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def _check_params(call: Call) -> tuple[list[int], dict]:
    """verify_vzdump_parameters + the handler's checks before the worker forks."""
    p = dict(call.params)
    if p.get("all") and p.get("vmid"):
        raise param_error({"all": "option conflicts with option 'vmid'"})
    if p.get("exclude") and p.get("vmid"):
        raise param_error({"exclude": "option conflicts with option 'vmid'"})
    if p.get("notes-template"):
        try:
            verify_notes_template(p["notes-template"])
        except ValueError as exc:
            raise param_error({"notes-template": str(exc)}) from None
    if p.get("exclude") and not p.get("pool"):
        p["all"] = 1
    if not (p.get("all") or p.get("stop") or p.get("pool") or p.get("vmid")):
        raise param_error({"vmid": "property is missing"})
    if p.get("stdout"):
        raise param_error({"stdout": "option is only allowed on the command line interface."})
    if p.get("vmid"):
        vmids = [int(v) for v in split_list(str(p["vmid"]))]
    else:
        excluded = {int(v) for v in split_list(str(p.get("exclude", "")))}
        vmids = [v for v in call.app.vmids() if v not in excluded]
    storeid = p.get("storage") or "local"
    if p.get("prune-backups") is not None:
        check(call.principal, f"/storage/{storeid}", ["Datastore.Allocate"])
    check(call.principal, f"/storage/{storeid}", ["Datastore.AllocateSpace"])
    allowed = [v for v in vmids if call.principal.has("VM.Backup")]
    if len(allowed) != len(vmids) and not p.get("all"):
        check(call.principal, f"/vms/{vmids[0]}", ["VM.Backup"])
    return sorted(allowed), p


@route("POST /nodes/{node}/vzdump")
def vzdump(call: Call):
    """POST vzdump: one task backing up each CT in turn (task id: the vmid when there is one)."""
    app = call.app
    vmids, p = _check_params(call)
    cmdline = command_line({k: v for k, v in call.params.items() if k != "node"} | {"node": app.node})

    def worker(task):
        with _JOB_LOCK:
            Job(app, task, p, cmdline).run(vmids)

    return app.run_task(call, "vzdump", vmids[0] if len(vmids) == 1 else "", worker, lock=False)


class Job:
    """One vzdump run: the storage resolved once, then each CT's backup with its own log."""

    def __init__(self, app, task, params: dict, cmdline: str):
        self.app, self.task, self.p, self.cmdline = app, task, params, cmdline

    def info(self, line: str, vmlog: list[str] | None = None, level: str = "INFO") -> None:
        """PVE::VZDump::Plugin::debugmsg: into the task log, and with a timestamp into the CT's own log."""
        self.task.log(f"{level}: {line}")
        if vmlog is not None:
            vmlog.append(f"{stamp()} {level}: {line}")

    def _storage(self) -> tuple[st.Storage, dict]:
        storeid = self.p.get("storage") or "local"
        errors = []
        store = self.app.storages.get(storeid)
        if store is None:
            errors += [f"could not activate storage '{storeid}': storage '{storeid}' does not exist",
                       f"could not get storage information for '{storeid}': storage '{storeid}' does not exist"]
        elif "backup" not in store.content:
            errors.append(f"could not get storage information for '{storeid}': "
                          f"can't use storage '{storeid}' for backups - wrong content type")
        if errors:
            # RESTEnvironment's fork_worker joins an error's lines with spaces in the task's status
            raise TaskFailure(" ".join(errors))
        st.ensure_dirs(store)
        keep = st.parse_keep(self.p["prune-backups"]) if self.p.get("prune-backups") else (
            st.parse_keep(store.prune_backups) if store.prune_backups else {"keep-all": "1"})
        return store, keep

    def run(self, vmids: list[int]) -> None:
        """exec_backup: the job's first line, each CT, then the job's verdict."""
        self.info(f"starting new backup job: {self.cmdline}")
        store, keep = self._storage()
        errors = 0
        for vmid in vmids:
            if not self.backup(vmid, store, keep):
                errors += 1
        if errors:
            self.info("Backup job finished with errors")
            raise TaskFailure("job errors")
        self.info("Backup job finished successfully")

    def backup(self, vmid: int, store: st.Storage, keep: dict) -> bool:
        """exec_backup_task for one CT; True when it succeeded (errors are logged, as PVE does)."""
        vmlog: list[str] = []
        started = time.time()
        basename = time.strftime(f"vzdump-lxc-{vmid}-%Y_%m_%d-%H_%M_%S", time.localtime(started))
        comp, ext = COMPRESSORS.get(str(self.p.get("compress", "0")), (None, ""))
        target = store.dump_dir / f"{basename}.tar{ext}"
        tmptar = target.with_name(f"{basename}.tar.dat")
        tmpdir = store.dump_dir / f"{basename}.tmp"
        cleanup: list = []
        ok = False
        try:
            if self.app.store.load(vmid) is None and vmid not in self.app.vmids():
                raise TaskFailure(f"unable to find VM '{vmid}'")
            self._limit(vmid, store, keep)
            self.info(f"Starting Backup of VM {vmid} (lxc)", vmlog)
            self.info(f"Backup started at {stamp()}", vmlog)
            running = self.app.running(vmid)
            self.info(f"status = {'running' if running else 'stopped'}", vmlog)
            with self.app.store.lock(vmid):
                set_lock(self.app, vmid, "backup")
            cleanup.append(lambda: remove_lock(self.app, vmid))
            config = self.app.store.load(vmid)["config"]
            self.info(f"CT Name: {config.get('hostname', f'CT{vmid}')}", vmlog)
            self.info("including mount point rootfs ('/') in backup", vmlog)
            mode = self.p.get("mode", "snapshot") if running else "stop"
            self.info(f"backup mode: {mode}", vmlog)
            self.info("ionice priority: 7", vmlog)
            self._assemble(vmid, config, tmpdir)
            cleanup.append(lambda: shutil.rmtree(tmpdir, ignore_errors=True))
            source = self._prepare(vmid, mode, running, vmlog, cleanup)
            self.info(f"creating vzdump archive '{target}'", vmlog)
            try:
                self.app.driver.archive(vmid, source, tmpdir, tmptar, comp, log=lambda line: self.info(line, vmlog))
            except Exception as exc:  # noqa: BLE001 - the driver's failure is the backup's, in its words
                raise TaskFailure(str(exc)) from None
            finally:
                if mode == "stop" and running:
                    self._restart(vmid, vmlog)
            os.replace(tmptar, target)
            self.info(f"archive file size: {format_size(target.stat().st_size)}", vmlog)
            self._attributes(vmid, config, target, vmlog)
            if str(self.p.get("remove", 1)) != "0" and str(keep.get("keep-all", "0")) != "1":
                self._prune(vmid, store, keep, vmlog)
            ok = True
        except (TaskFailure, OSError) as exc:
            message = str(exc) if isinstance(exc, TaskFailure) else f"{exc.strerror}: {exc.filename}"
            for undo in reversed(cleanup):
                undo()
            cleanup = []
            tmptar.unlink(missing_ok=True)
            self.info(f"Backup of VM {vmid} failed - {message}", vmlog, level="ERROR")
            self.info(f"Failed at {stamp()}", vmlog)
        finally:
            for undo in reversed(cleanup):
                undo()
        if ok:
            self.info(f"Finished Backup of VM {vmid} ({format_time(time.time() - started)})", vmlog)
            self.info(f"Backup finished at {stamp()}", vmlog)
        if vmlog and store.dump_dir.is_dir():
            try:
                (store.dump_dir / f"{basename}.log").write_text("\n".join(vmlog) + "\n")
            except OSError:
                pass  # a full storage loses the log as it does on PVE (cp fails, the task log keeps it)
        return ok

    def _limit(self, vmid: int, store: st.Storage, keep: dict) -> None:
        """The max-backup check PVE makes when it may not prune (remove=0) or marks a backup protected."""
        limit = 0 if str(keep.get("keep-all", "0")) == "1" else sum(
            int(v) for k, v in keep.items() if k != "keep-all")
        if (limit and str(self.p.get("remove", 1)) == "0") and not self.p.get("protected"):
            count = sum(1 for b in st.list_backups(store, vmid) if not b.get("protected"))
            if count >= limit:
                raise TaskFailure(f"There is a max backup limit of {limit} enforced by the target storage or the "
                                  "vzdump parameters. Either increase the limit or delete old backups.")

    def _assemble(self, vmid: int, config: dict, tmpdir: Path) -> None:
        """VZDump/LXC.pm assemble: ./etc/vzdump/pct.conf (without lock, snapshots, parent) and ./etc/vzdump/pct.fw,
        the CT's firewall file (empty when it has none)."""
        saved = {k: v for k, v in config.items() if k not in ("lock", "parent", "digest", "pending")}
        conf = tmpdir / "etc" / "vzdump" / "pct.conf"
        try:
            shutil.rmtree(tmpdir, ignore_errors=True)
            conf.parent.mkdir(parents=True)
            conf.write_text(render_conf(saved))
            conf.with_name("pct.fw").write_text(fwfile.render(self.app.firewall.ct(vmid)))
        except OSError as exc:
            raise TaskFailure(f"unable to open file '{conf}' - {os.strerror(exc.errno or 0)}") from None

    def _prepare(self, vmid: int, mode: str, running: bool, vmlog: list, cleanup: list) -> str | None:
        """Make the CT's files still for the copy; return the driver snapshot to read (None: the live files)."""
        app = self.app
        if mode == "snapshot":
            self.info("create storage snapshot 'vzdump'", vmlog)
            with app.store.lock(vmid):
                if "vzdump" in app.store.load(vmid)["snapshots"]:
                    self.info("found old vzdump snapshot (force removal)", vmlog)
                    self._drop_snapshot(vmid, "vzdump", record=True)
                app.driver.snapshot(vmid, "vzdump")
                app.store.add_snapshot(vmid, "vzdump", int(time.time()), "vzdump backup snapshot")

            def remove():
                self.info("cleanup temporary 'vzdump' snapshot", vmlog)
                self._drop_snapshot(vmid, "vzdump", record=True)

            cleanup.append(remove)
            return "vzdump"
        if mode == "suspend":
            self.info("suspending guest", vmlog)
            if SUSPEND_SNAPSHOT in (app.driver.snapshots(vmid) or []):
                app.driver.delete_snapshot(vmid, SUSPEND_SNAPSHOT)
            app.driver.snapshot(vmid, SUSPEND_SNAPSHOT)  # the driver freezes the CT while it copies
            self.info("resuming guest", vmlog)
            cleanup.append(lambda: self._drop_snapshot(vmid, SUSPEND_SNAPSHOT, record=False))
            return SUSPEND_SNAPSHOT
        if running:
            self.info("stopping virtual guest", vmlog)
            self.stopped_at = time.time()
            stop_ct(app, vmid)
        return None

    def _drop_snapshot(self, vmid: int, name: str, record: bool) -> None:
        try:
            self.app.driver.delete_snapshot(vmid, name)
        except Exception as exc:  # noqa: BLE001 - PVE warns and goes on
            self.task.log(f"snapshot '{name}' was not (fully) removed - {exc}")
        rec = self.app.store.load(vmid)
        if record and rec is not None and name in rec["snapshots"]:
            self.app.store.remove_snapshot(vmid, name)

    def _restart(self, vmid: int, vmlog: list) -> None:
        self.info("restarting vm", vmlog)
        start_ct(self.app, vmid)
        delay = time.time() - getattr(self, "stopped_at", time.time())
        self.info(f"guest is online again after {'<1' if delay < 1 else int(delay)} seconds", vmlog)

    def _attributes(self, vmid: int, config: dict, target: Path, vmlog: list) -> None:
        """Notes from the template, then the protected flag (before any pruning)."""
        if self.p.get("notes-template"):
            self.info("adding notes to backup", vmlog)
            values = {"cluster": "standalone node", "guestname": config.get("hostname", f"CT{vmid}"),
                      "node": self.app.node, "vmid": vmid}
            try:
                st.set_attribute(target, "notes", generate_notes(self.p["notes-template"], values))
            except Exception as exc:  # noqa: BLE001 - PVE only warns
                self.info(f"unable to add notes - {exc}", vmlog, level="WARN")
        if self.p.get("protected"):
            self.info("marking backup as protected", vmlog)
            st.set_attribute(target, "protected", 1)

    def _prune(self, vmid: int, store: st.Storage, keep: dict, vmlog: list) -> None:
        self.info(f"prune older backups with retention: {st.keep_text(keep)}", vmlog)
        marked = st.prune(store, keep, vmid, "lxc", lambda line: self.info(line, vmlog))
        pruned = sum(1 for e in marked if e["mark"] == "remove")
        extra = " not covered by keep-retention policy" if pruned else ""
        self.info(f"pruned {pruned} backup(s){extra}", vmlog)
