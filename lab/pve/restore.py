"""Restore of a CT from a vzdump archive (POST /nodes/{node}/lxc with restore=1), as pve-container's API2/LXC.pm
and LXC/Create.pm do it, with one difference the lab keeps on purpose: the whole archive is extracted (and so
checked) BEFORE an existing CT is touched, so a damaged archive fails the task with the old CT as it was.
"""

from __future__ import annotations

import random
import shlex
import shutil
import subprocess
from pathlib import Path

from . import fwfile
from . import storage as st
from .api_lxc import start_ct
from .errors import TaskFailure, fail
from .netconf import parse_net, with_mac
from .routes import Call
from .state import parse_conf

# pve-storage Plugin.pm COMMON_TAR_FLAGS, as LXC/Create.pm restore_archive extracts with them.
TAR_X = ("--totals", "--one-file-system", "-p", "--sparse", "--numeric-owner", "--acls", "--xattrs",
         "--xattrs-include=user.*", "--xattrs-include=security.capability", "--warning=no-file-ignored",
         "--warning=no-xattr-write")
DECOMPRESS = {"zst": ["--zstd"], "gz": ["-z"], "lzo": ["--lzop"], "tgz": ["-z"]}
# Create.pm sanitize_and_merge_config: what never comes back from the archive's config.
NOT_RESTORED = ("lock", "digest", "parent", "snapshots", "template", "pending")


def check_restore(call: Call, store_record_exists: bool) -> tuple[st.Storage, Path]:
    """The checks PVE makes before forking: the volume, the target storage, an existing CT's state."""
    app, p, vmid = call.app, call.params, call.vmid
    storeid, volname = st.parse_volume(p["ostemplate"])
    store = st.storage_config(app, storeid)
    archive = st.backup_path(store, volname)
    target = p.get("storage", "local")
    target_store = st.storage_config(app, target)
    if "rootdir" not in target_store.content:
        raise fail(f"storage '{target}' does not support CT rootdirs")
    if store_record_exists:
        if not p.get("force"):
            raise fail(f"CT {vmid} already exists on node '{app.node_of(vmid) or app.node}'")
        if app.running(vmid):
            raise fail("can't overwrite running container")
        config = app.store.load(vmid)["config"]
        if str(config.get("protection", "0")) == "1":
            raise fail(f"unable to restore CT {vmid} - protection mode enabled")
        if config.get("lock"):
            raise fail(f"unable to restore CT {vmid} - CT is locked ({config['lock']})")
    return store, archive


def extract(archive: Path, dest: Path, log) -> None:
    """Extract the whole archive (every block read and checked by tar and the decompressor) into dest."""
    if not archive.is_file():
        raise TaskFailure(f"ERROR: file '{archive}' does not exist")
    info = st.archive_info(archive.name) or {}
    comp = info.get("compression") or ("tgz" if info.get("format") == "tgz" else "")
    cmd = ["tar", "xpf", str(archive), *DECOMPRESS.get(comp, []), *TAR_X, "-C", str(dest),
           "--skip-old-files", "--anchored", "--exclude", "./dev/*"]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    log(f"extracting archive '{archive}'")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    for line in (done.stderr or "").splitlines():
        log(line)
    if done.returncode != 0:
        raise TaskFailure(f"command '{shlex.join(cmd)}' failed: exit code {done.returncode}")


def random_mac() -> str:
    """PVE::Tools::random_ether_addr with PVE's default prefix BC:24:11."""
    return "BC:24:11:" + ":".join(f"{random.randrange(256):02X}" for _ in range(3))  # nosec B311 # a MAC address, as PVE picks one


def merged_config(call: Call, archived: dict, rootfs_storage: str) -> dict:
    """Create.pm restore_configuration: the archive's config, the call's options over it, a new rootfs volume."""
    from .api_create import is_stored

    vmid = call.vmid
    config = {k: v for k, v in archived.items() if k not in NOT_RESTORED and not k.startswith("unused")}
    size = "8G"
    for part in str(archived.get("rootfs", "")).split(","):
        if part.startswith("size="):
            size = part[5:]
    config["rootfs"] = f"{rootfs_storage}:{vmid}/vm-{vmid}-disk-0.raw,size={size}"
    config.update({k: v for k, v in call.params.items() if is_stored(k)})
    if "net0" in call.params:
        config["net0"] = parse_net(call.params["net0"], vmid)[0]
    if call.params.get("unique") and config.get("net0"):
        config["net0"] = with_mac(config["net0"], random_mac())
    return config


def restore(call: Call):
    """POST lxc with restore=1: a vzrestore task (the archive checked first, then the CT replaced)."""
    app, vmid = call.app, call.vmid
    existed = app.store.load(vmid) is not None or vmid in app.vmids()
    _, archive = check_restore(call, existed)
    rootfs_storage = call.params.get("storage", "local")
    emsg = f"unable to restore CT {vmid} -"
    if existed:
        rec = app.store.load(vmid)
        rec["config"]["lock"] = "create"
        app.store.save(vmid, rec)
    elif not app.store.create(vmid, {"lock": "create"}):
        raise fail(f"CT {vmid} already exists on node '{app.node_of(vmid) or app.node}'")
    tmp = app.state_dir / "restore" / f"{vmid}.tmp"

    def worker(task):
        touched = False
        try:
            task.log(f"recovering backed-up configuration from '{call.params['ostemplate']}'")
            extract(archive, tmp, task.log)
            conf_file = tmp / "etc" / "vzdump" / "pct.conf"
            if not conf_file.is_file():
                raise TaskFailure("ERROR: archive contains no configuration file")
            config = merged_config(call, parse_conf(conf_file.read_text()), rootfs_storage)
            if not config.get("net0"):
                raise TaskFailure("the lab needs net0 with a static ip=198.18.x.y/nn")
            net = parse_net(config["net0"], vmid)[1]
            task.log(f"restoring '{call.params['ostemplate']}' now..")
            touched = True
            if app.driver.exists(vmid):
                app.driver.destroy(vmid)  # the old volumes and snapshots go, as PVE's destroy_lxc_container
            app.driver.create(vmid, config.get("hostname", f"CT{vmid}"), net["ip"], net["prefix"],
                              net["gateway"], net["mac"], "", memory=int(config.get("memory", 512)),
                              cores=int(config.get("cores", 1)))
            app.driver.restore_files(vmid, tmp)
            task.log("merging backed-up and given configuration..")
            app.store.save(vmid, {"config": config, "snapshots": {}})
            fw_file = tmp / "etc" / "vzdump" / "pct.fw"
            if fw_file.is_file():  # LXC/Create.pm restore_configuration: the archive's pct.fw becomes <vmid>.fw
                restored_fw = fwfile.parse(fw_file.read_text())
                app.firewall.change_ct(vmid, lambda ct: ct.update(restored_fw))
            app.place(vmid, app.request_node())  # restored on the node the call was made on
        except Exception as exc:  # noqa: BLE001 - any failure ends the restore as PVE words it
            if touched or not existed:
                # never a half-restored CT: what was replaced is gone, as PVE's destroy_config_on_error
                if app.driver.exists(vmid):
                    app.driver.destroy(vmid)
                app.store.delete(vmid)
            else:
                rec = app.store.load(vmid)
                if rec is not None:
                    rec["config"].pop("lock", None)
                    app.store.save(vmid, rec)
            message = str(exc).strip().replace("\n", " ")
            raise TaskFailure(f"{emsg} {message}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if call.params.get("start"):
            start_ct(app, vmid)
            task.log(f"started CT {vmid}")

    return app.run_task(call, "vzrestore", vmid, worker)
