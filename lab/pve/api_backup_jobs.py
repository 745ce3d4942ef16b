"""Backup jobs (/cluster/backup, jobs.cfg) and /cluster/backup-info/not-backed-up, as pve-manager's
PVE/API2/Backup.pm and PVE/API2/Cluster/BackupInfo.pm answer them.

The jobs are kept in STATE_DIR/state/jobs.json with the node's other configuration. Running them on their
schedule is pvescheduler's work, which the lab does not emulate: a job is configuration that a client
creates, reads, changes and deletes; its backups are taken with POST /nodes/{node}/vzdump.
"""

from __future__ import annotations

import json
import os
import threading
import uuid

from . import storage as st
from .api_vzdump import verify_notes_template
from .errors import fail, param_error
from .formats import split_list
from .routes import Call, route

ALL_DAYS = "mon,tue,wed,thu,fri,sat,sun"
DELETABLE = ("comment", "repeat-missed")
# PVE returns these property strings parsed (Backup.pm $backup_job_return_schema).
PARSED = ("prune-backups", "fleecing", "performance")
_LOCK = threading.Lock()


def _read(app) -> dict:
    try:
        return json.loads(app.jobs_file.read_text())
    except FileNotFoundError:
        return {"ids": {}, "order": []}


def _write(app, data: dict) -> None:
    app.jobs_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = app.jobs_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, app.jobs_file)


def _schedule(params: dict, creating: bool) -> None:
    """Backup.pm $schedule_param_check: schedule, or the old starttime[+dow] turned into one."""
    if params.get("schedule") is not None:
        if params.get("starttime") is not None:
            raise param_error({"starttime": "'starttime' and 'schedule' cannot both be set"})
    elif params.get("starttime") is None:
        if creating:
            raise param_error({"schedule": "neither 'starttime' nor 'schedule' were set"})
    else:
        dow = ",".join(split_list(str(params.get("dow", ""))))
        params["schedule"] = params["starttime"] if not dow or dow == ALL_DAYS else f"{dow} {params['starttime']}"
    params.pop("starttime", None)
    params.pop("dow", None)


def _verify(job: dict, check_missing: bool) -> None:
    """VZDump.pm verify_vzdump_parameters for a job."""
    if job.get("all") and job.get("vmid"):
        raise param_error({"all": "option conflicts with option 'vmid'"})
    if job.get("exclude") and job.get("vmid"):
        raise param_error({"exclude": "option conflicts with option 'vmid'"})
    if job.get("notes-template"):
        try:
            verify_notes_template(job["notes-template"])
        except ValueError as exc:
            raise param_error({"notes-template": str(exc)}) from None
    if check_missing and not (job.get("all") or job.get("stop") or job.get("pool") or job.get("vmid")):
        raise param_error({"vmid": "property is missing"})


def _stored(params: dict) -> dict:
    """A job's options as jobs.cfg keeps them (property strings parsed)."""
    return {key: st.parse_keep(value) if key in PARSED and isinstance(value, str) else value
            for key, value in params.items() if key not in ("id", "delete", "digest")}


def _answer(job_id: str, job: dict) -> dict:
    out = {"id": job_id, "type": "vzdump", **job}
    for key in PARSED:
        if isinstance(out.get(key), dict):
            out[key] = {k: int(v) if str(v).isdigit() else v for k, v in out[key].items()}
    return out


@route("GET /cluster/backup")
def job_index(call: Call):
    """GET /cluster/backup: every vzdump job, in creation order."""
    data = _read(call.app)
    return [_answer(i, data["ids"][i]) for i in data["order"] if i in data["ids"]]


@route("POST /cluster/backup")
def job_create(call: Call):
    """POST /cluster/backup: a new job (id generated when not given), enabled unless told otherwise."""
    params = dict(call.params)
    _schedule(params, creating=True)
    params.setdefault("enabled", 1)
    job_id = params.pop("id", None) or str(uuid.uuid4())
    with _LOCK:
        data = _read(call.app)
        if job_id in data["ids"]:
            raise fail(f"Job '{job_id}' already exists")
        _verify(params, True)
        data["ids"][job_id] = _stored(params)
        data["order"].append(job_id)
        _write(call.app, data)


@route("GET /cluster/backup/{id}")
def job_read(call: Call):
    """GET one job."""
    job = _read(call.app)["ids"].get(call.params["id"])
    if job is None:
        raise param_error({"id": f"No such job '{call.params['id']}'"})
    return _answer(call.params["id"], job)


@route("PUT /cluster/backup/{id}")
def job_update(call: Call):
    """PUT a job: given options replace the old ones, `delete` removes some; vmid/all/pool exclude each other."""
    params = dict(call.params)
    job_id = params.pop("id")
    delete = split_list(str(params.pop("delete", "")))
    params.pop("digest", None)
    _schedule(params, creating=False)
    with _LOCK:
        data = _read(call.app)
        if not params and not delete:
            raise fail("no options specified")
        _verify(params, False)
        job = data["ids"].get(job_id)
        if job is None:
            raise fail("no such vzdump job")
        for key in delete:
            if key not in DELETABLE and key not in _vzdump_options():
                raise param_error({"delete": f"unknown option '{key}'"})
            job.pop(key, None)
        job.update(_stored(params))
        if job.get("exclude") is not None and job.get("pool") is None:
            job["all"] = 1
        if params.get("vmid") is not None:
            for key in ("all", "exclude", "pool"):
                job.pop(key, None)
        elif params.get("all"):
            job.pop("vmid", None)
            job.pop("pool", None)
        _verify(job, True)
        _write(call.app, data)


def _vzdump_options() -> set[str]:
    from . import apischema

    return set(apischema.methods()["POST /nodes/{node}/vzdump"]["parameters"]["properties"])


@route("DELETE /cluster/backup/{id}")
def job_delete(call: Call):
    """DELETE a job."""
    job_id = call.params["id"]
    with _LOCK:
        data = _read(call.app)
        if job_id not in data["ids"]:
            raise param_error({"id": f"No such job '{job_id}'"})
        del data["ids"][job_id]
        data["order"] = [i for i in data["order"] if i != job_id]
        _write(call.app, data)


def remove_vmid_from_jobs(app, vmid: int) -> None:
    """VZDump/Plugin.pm remove_vmid_from_backup_jobs (a purged guest's destroy): the VMID leaves each job's `vmid`
    list (a job left with none is deleted) or its `exclude` list (dropped when empty)."""
    def without(listed) -> str:
        return ",".join(v for v in split_list(str(listed)) if v != str(vmid))

    with _LOCK:
        data = _read(app)
        for job_id, job in list(data["ids"].items()):
            if job.get("vmid") is not None:
                if kept := without(job["vmid"]):
                    job["vmid"] = kept
                else:
                    del data["ids"][job_id]
                    data["order"] = [i for i in data["order"] if i != job_id]
            elif job.get("exclude") is not None:
                if kept := without(job["exclude"]):
                    job["exclude"] = kept
                else:
                    del job["exclude"]
        _write(app, data)


def included_vmids(app) -> set[int]:
    """BackupInfo.pm get_included_vmids: the guests any job (enabled or not) includes."""
    found: set[int] = set()
    every = set(app.vmids())
    for job in _read(app)["ids"].values():
        if job.get("vmid"):
            found |= {int(v) for v in split_list(str(job["vmid"]))}
        elif job.get("all"):
            found |= every - {int(v) for v in split_list(str(job.get("exclude", "")))}
    return found


@route("GET /cluster/backup-info/not-backed-up")
def not_backed_up(call: Call):
    """GET not-backed-up: the CTs no job includes (those the caller may audit)."""
    app = call.app
    included = included_vmids(app)
    out = []
    for vmid in app.vmids():
        if vmid in included or not call.principal.has("VM.Audit"):
            continue
        rec = app.store.load(vmid)
        entry = {"vmid": vmid, "type": "lxc"}
        if rec and rec["config"].get("hostname"):
            entry["name"] = rec["config"]["hostname"]
        out.append(entry)
    return out
