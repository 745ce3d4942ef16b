"""ansible-runner wrapper: run one playbook of ansible/ and give its outcome per host, redacted.

Secrets never leave this module in clear: values of extravars whose names say they hold a secret
(plugins/shared/secret_names.py: is_secret_name), and the private key's content, are registered with the
suite's redactor and masked in the events, the stdout and the recap. Extravars reach
ansible-playbook through a file of a private temp dir (mode 0700, removed after the run), never
through the command line.
"""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import ansible_runner

from plugins.report.redaction import MASK, REDACTOR
from plugins.shared.secret_names import is_secret_name

if TYPE_CHECKING:
    from plugins.tools.vault import VaultFiles

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
ANSIBLE_CFG = ANSIBLE_DIR / "ansible.cfg"
PLAYBOOKS_DIR = ANSIBLE_DIR / "playbooks"
ROLES_DIR = ANSIBLE_DIR / "roles"
BOOTSTRAP_PLAYBOOK = "bootstrap"
SITE_PLAYBOOK = "site"  # the deploy's one run: bootstrap, then each host's roles (ansible/playbooks/site.yml)

STAT_FIELDS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
FAILED_EVENTS = ("runner_on_failed", "runner_on_async_failed", "runner_on_unreachable")

EventHandler = Callable[[dict], Any]


class TaskFailure(NamedTuple):
    """One failed or unreachable task: where, which, why."""

    host: str
    task: str
    message: str


@dataclass
class HostStats:
    """Counts of one host in the play recap."""

    ok: int = 0
    changed: int = 0
    failures: int = 0
    dark: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def unreachable(self) -> int:
        """Ansible's name for `dark`."""
        return self.dark


@dataclass
class PlaybookResult:
    """Outcome of one ansible-playbook run (events and stdout already redacted)."""

    playbook: str
    rc: int
    status: str
    stats: dict[str, HostStats]
    events: list[dict] = field(default_factory=list)
    stdout: str = ""
    duration: float = 0.0
    check: bool = False
    extravars: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the run succeeded with no failed or unreachable host."""
        hosts_fine = all(s.failures == 0 and s.dark == 0 for s in self.stats.values())
        return self.rc == 0 and self.status == "successful" and hosts_fine

    @property
    def changed_total(self) -> int:
        """Changed tasks summed over every host (0 on an idempotent rerun)."""
        return sum(s.changed for s in self.stats.values())

    def changed_hosts(self) -> dict[str, int]:
        """Hosts that reported changes, with their counts."""
        return {host: s.changed for host, s in self.stats.items() if s.changed}

    def changed_tasks(self) -> list[tuple[str, str]]:
        """(host, task) of every task that reported a change: what an idempotence rerun must not show."""
        return [
            (data.get("host", "?"), task_label(data))
            for event in self.events
            if event.get("event") == "runner_on_ok"
            and ((data := event.get("event_data") or {}).get("res") or {}).get("changed")
        ]

    def failures(self) -> list[TaskFailure]:
        """Failed and unreachable tasks (ignored errors excepted); the run's error when it died early."""
        found = []
        for event in self.events:
            if event.get("event") not in FAILED_EVENTS:
                continue
            data = event.get("event_data") or {}
            if data.get("ignore_errors"):
                continue
            found.append(TaskFailure(data.get("host", "?"), task_label(data), failure_message(event)))
        if not found and not self.ok:
            found.append(TaskFailure("-", "ansible-playbook", self._stdout_tail()))
        return found

    def failures_of(self, host: str) -> list[TaskFailure]:
        """The failed and unreachable tasks of one host."""
        return [f for f in self.failures() if f.host == host]

    def changed_tasks_of(self, host: str) -> list[str]:
        """Tasks that reported a change on one host."""
        return [task for name, task in self.changed_tasks() if name == host]

    def summary(self) -> str:
        """One line: playbook, status, totals."""
        totals = {name: sum(getattr(s, name) for s in self.stats.values()) for name in STAT_FIELDS}
        mode = " (check)" if self.check else ""
        return (
            f"{self.playbook}{mode}: {self.status} rc={self.rc} in {self.duration:.1f} s, "
            f"{len(self.stats)} host(s), ok={totals['ok']} changed={totals['changed']} "
            f"failed={totals['failures']} unreachable={totals['dark']} skipped={totals['skipped']}"
        )

    def recap(self) -> str:
        """Multi-line recap for the report: the summary, one line per host, then the failures."""
        lines = [self.summary()]
        width = max((len(h) for h in self.stats), default=0)
        for host, s in sorted(self.stats.items()):
            lines.append(
                f"  {host:<{width}}  ok={s.ok} changed={s.changed} unreachable={s.dark} "
                f"failed={s.failures} skipped={s.skipped} rescued={s.rescued} ignored={s.ignored}"
            )
        failures = self.failures() if not self.ok else []
        if failures:
            lines.append("failures:")
            lines.extend(f"  {f.host} | {f.task} | {f.message}" for f in failures)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-able record for the session object and the report."""
        return {
            "playbook": self.playbook,
            "rc": self.rc,
            "status": self.status,
            "check": self.check,
            "duration": round(self.duration, 3),
            "changed_total": self.changed_total,
            "stats": {host: vars(s) for host, s in self.stats.items()},
            "changed_tasks": {host: self.changed_tasks_of(host) for host in self.changed_hosts()},
            "failures": [f._asdict() for f in self.failures()] if not self.ok else [],
            "extravars": self.extravars,
        }

    def _stdout_tail(self, lines: int = 6) -> str:
        tail = [line for line in self.stdout.splitlines() if line.strip()][-lines:]
        return " / ".join(tail) or f"ansible-playbook ended with rc={self.rc}, status {self.status}, no output"


def task_label(data: dict) -> str:
    """`role : task` as Ansible prints it, or the task name alone."""
    task = data.get("task") or data.get("task_action") or "?"
    role = data.get("role")
    return f"{role} : {task}" if role else task


def failure_message(event: dict, limit: int = 500) -> str:
    """Why a task failed: its msg, with the command's stderr when there is one."""
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    if isinstance(res.get("results"), list):  # a loop: the first item that failed
        res = next((item for item in res["results"] if isinstance(item, dict) and item.get("failed")), res)
    parts = [str(res.get("msg") or "").strip()]
    if res.get("cmd"):
        command = res["cmd"] if isinstance(res["cmd"], str) else " ".join(map(str, res["cmd"]))
        parts.append(f"`{command}` rc={res.get('rc')}")
    for name in ("stderr", "module_stderr"):
        text = str(res.get(name) or "").strip()
        if text and text not in parts[0]:
            parts.append(text.splitlines()[-1])
    message = ": ".join(p for p in parts if p) or event.get("event", "failed")
    return message if len(message) <= limit else message[: limit - 1] + "…"


def secret_values(variables: Any, name: str = "") -> list[str]:
    """Values (as text) of every variable whose name says it holds a secret (is_secret_name), nested too."""
    if isinstance(variables, dict):
        inherited = name if name and is_secret_name(name) else ""
        return [v for k, item in variables.items() for v in secret_values(item, inherited or str(k))]
    if isinstance(variables, (list, tuple)):
        return [v for item in variables for v in secret_values(item, name)]
    if name and is_secret_name(name) and variables not in (None, ""):
        return [str(variables)]
    return []


def redact_vars(variables: dict) -> dict:
    """A copy of the variables with secret-named values masked."""
    clean = {}
    for name, value in variables.items():
        if is_secret_name(name) and value not in (None, ""):
            clean[name] = MASK
        elif isinstance(value, dict):
            clean[name] = redact_vars(value)
        else:
            clean[name] = value
    return clean


def playbook_path(playbook: str | os.PathLike) -> Path:
    """Path of a playbook: a name of ansible/playbooks (`proxy`, `proxy.yml`) or a file path."""
    path = Path(playbook)
    if path.is_absolute() or path.parent != Path("."):
        return path.resolve()
    name = path.name if path.suffix in (".yml", ".yaml") else f"{path.name}.yml"
    return PLAYBOOKS_DIR / name


def playbooks_for(roles: Iterable[str]) -> list[Path]:
    """Playbooks of a deploy: bootstrap first, then one per role in the inventory's order."""
    ordered = [BOOTSTRAP_PLAYBOOK] + [r for r in dict.fromkeys(roles) if r != BOOTSTRAP_PLAYBOOK]
    missing = [r for r in ordered if not playbook_path(r).is_file()]
    if missing:
        raise FileNotFoundError(f"no playbook for role(s) {', '.join(missing)} in {PLAYBOOKS_DIR}")
    return [playbook_path(r) for r in ordered]


def ssh_args() -> str:
    """The ssh_args of ansible/ansible.cfg (ControlPersist, accept-new, key exchange)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ANSIBLE_CFG)
    return parser.get("ssh_connection", "ssh_args", fallback="")


def vault_values(vault: VaultFiles) -> list[str]:
    """Every string the vault holds, to mask in the run's output ([] when it does not open: Ansible says why)."""
    from plugins.tools.vault import VaultProblem, leaves, open_vault

    try:
        return [text for value in open_vault(vault).values() for text in leaves(value)]
    except VaultProblem:
        return []


def runner_env(private_key: str | os.PathLike, known_hosts: Path, temp_dir: Path) -> dict[str, str]:
    """Environment of ansible-playbook: venv on PATH, our ansible.cfg, key, the run's known_hosts."""
    venv_bin = Path(sys.executable).parent
    return {
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_ROLES_PATH": str(ROLES_DIR),
        "ANSIBLE_PRIVATE_KEY_FILE": str(private_key),
        # Host keys are checked: accept-new pins each host's key in this file on first contact.
        # Synchronize's rsync gets the same arguments (use_ssh_args).
        "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={known_hosts}",
        "ANSIBLE_LOCAL_TEMP": str(temp_dir / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }


def read_stdout(runner: Any) -> str:
    """The run's stdout artifact ('' when the run died before writing one)."""
    try:
        with runner.stdout as handle:
            return handle.read()
    except (OSError, AttributeError, TypeError):
        return ""


def stats_from_events(events: list[dict]) -> dict[str, HostStats]:
    """Per-host counts from the run's playbook_on_stats event (empty when the run died early)."""
    final = next((e for e in reversed(events) if e.get("event") == "playbook_on_stats"), None)
    data = (final or {}).get("event_data") or {}
    hosts = sorted({h for name in STAT_FIELDS for h in (data.get(name) or {})})
    return {h: HostStats(**{name: int((data.get(name) or {}).get(h, 0)) for name in STAT_FIELDS}) for h in hosts}


class _Interruption:
    """SIGINT/SIGTERM during a run: ansible-runner stops the child, then the signal goes on to the caller.

    Left to itself, ansible-runner installs SIGINT/SIGTERM handlers in the caller's process that only
    cancel the run, and never restores them: a Ctrl-C or a CI timeout would be swallowed.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self._record)
        return self

    def _record(self, number: int, frame: Any) -> None:
        self.received = number

    def cancelled(self) -> bool:
        """ansible-runner's cancel_callback: True once a signal arrived."""
        return self.received is not None

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        if self.received is not None and not any(exc):
            signal.raise_signal(self.received)  # the caller's own handler: KeyboardInterrupt, exit


def run_playbook(
    playbook: str | os.PathLike,
    inventory: dict | str | os.PathLike,
    *,
    private_key: str | os.PathLike,
    extravars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    event_handler: EventHandler | None = None,
    known_hosts: str | os.PathLike | None = None,
    timeout: int | None = None,
    vault: VaultFiles | None = None,
) -> PlaybookResult:
    """Run one playbook through ansible-runner and return its redacted outcome (never raises on failure).

    `vault`: the Ansible Vault vars file and its password file (`--vault-password-file`, `-e @file`)."""
    path = playbook_path(playbook)
    if not path.is_file():
        raise FileNotFoundError(f"playbook {path} not found (playbooks: {PLAYBOOKS_DIR})")
    extravars = dict(extravars or {})
    REDACTOR.add(*secret_values(extravars))
    REDACTOR.add_file(private_key)
    if vault is not None:
        REDACTOR.add(*vault_values(vault))
    events: list[dict] = []

    def on_event(event: dict) -> bool:
        clean = REDACTOR.redact_obj(event)
        events.append(clean)
        if event_handler is not None:
            event_handler(clean)
        return True

    flags = [flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted]
    if vault is not None:
        flags += ["--vault-password-file", shlex.quote(str(vault.password_file)), "-e", shlex.quote(f"@{vault.vault_file}")]
    cmdline = " ".join(flags)
    private_dir = Path(tempfile.mkdtemp(prefix="homelab-ansible-"))  # mode 0700: extravars land here
    started = time.monotonic()
    try:
        (private_dir / "tmp").mkdir()
        hosts_file = Path(known_hosts) if known_hosts else private_dir / "known_hosts"
        with _Interruption() as interruption:
            runner = ansible_runner.run(
                private_data_dir=str(private_dir),
                project_dir=str(path.parent),
                playbook=path.name,
                inventory=dict(inventory) if isinstance(inventory, dict) else str(inventory),
                envvars=runner_env(private_key, hosts_file, private_dir),
                extravars=extravars or None,
                cmdline=cmdline or None,
                limit=limit,
                event_handler=on_event,
                cancel_callback=interruption.cancelled,
                quiet=True,
                timeout=timeout,
            )
            stdout = read_stdout(runner)
        rc, status = runner.rc, runner.status
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)
    return PlaybookResult(
        playbook=path.name,
        rc=rc if rc is not None else -1,
        status=status or "unknown",
        stats=stats_from_events(events),
        events=events,
        stdout=REDACTOR.redact(stdout),
        duration=time.monotonic() - started,
        check=check,
        extravars=redact_vars(extravars),
    )
