"""`python -m plugins.inventory check` and the suites' collection, as a user runs them on a broken inventory.

Structure, then the repository (roles, Terraform directory, ports), then with --here this machine's files.
Every problem is one line on stderr; exit non-zero; nothing written; never a traceback; never a secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from broken_inventory import HOMELAB, LAB, ROOT, edited, lab_document, lab_text, write

from plugins.inventory import load_inventory, machine_problems, repository_problems
from plugins.stack import ansible_inventory

pytestmark = pytest.mark.unit

SECRET = "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def run_check(cwd: Path, *args: str, module: str = "plugins.inventory") -> subprocess.CompletedProcess:
    """`python -m plugins.inventory ARGS` (or another module's) from cwd, as a user would type it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def assert_refused(done: subprocess.CompletedProcess, lines: int, *secrets: str) -> list[str]:
    """Exit 1, exactly `lines` lines on stderr, nothing on stdout, no traceback, no secret; the lines."""
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert done.stdout == "", output
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, output
    errors = done.stderr.splitlines()
    assert len(errors) == lines, errors
    return errors


# --- the shipped inventories ----------------------------------------------------------------------

def test_both_shipped_inventories_pass_check():
    """lab.yml and homelab.yml pass structure and repository checks (homelab's files are not looked for here)."""
    done = run_check(ROOT, "check", "inventories/lab.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    checked = "structure, repository; files on this machine not checked: --here"
    lab_checks, homelab_checks = (len(load_inventory(path).endpoints) for path in (LAB, HOMELAB))
    assert done.stdout.splitlines() == [f"inventories/lab.yml: ok (5 hosts, {lab_checks} services; {checked})"]
    homelab = run_check(ROOT, "check", "inventories/homelab.yml")
    assert homelab.returncode == 0, homelab.stdout + homelab.stderr
    assert homelab.stdout.splitlines() == [f"inventories/homelab.yml: ok (5 hosts, {homelab_checks} services; {checked})"]


def test_homelab_with_here_names_each_missing_file_on_its_own_line():
    """--here on this machine: the owner's CA file, deploy key and its .pub are not here, one line each."""
    # The CLI stops at the repository's disagreement (see the test above) before --here: ask the machine check.
    problems = machine_problems(load_inventory(HOMELAB))
    errors = [f"inventories/homelab.yml: {key}: {message}" for key, message in problems]
    assert [e.split(": ", 2)[1] for e in errors] == ["proxmox.ca_file", "stack.tls.cert_file", "stack.tls.key_file",
                                                     "stack.tls.ca_file", "runner.deploy_key", "runner.deploy_key"]
    assert all(e.startswith("inventories/homelab.yml: ") and "does not exist on this machine" in e for e in errors)


# --- broken inventories through the CLI -------------------------------------------------------------

BROKEN = [
    ("yaml-octal", edited("vmid: 200", "vmid: 0200"), 1, ()),
    ("yaml-bool", edited("protected: true", "protected: yes"), 1, ()),
    ("unclosed-quote", edited("bucket: homelab-tfstate", 'bucket: "homelab-tfstate'), 1, ()),
    ("list-key", lab_text() + "? [a]\n: b\n", 1, ()),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdef", "bcdefg")), 1, ()),
    ("token-with-secret", edited("token_id: root@pam!lab", f"token_id: root@pam!lab={SECRET}"), 1, (SECRET,)),
    ("url-with-credentials", edited("endpoint: http://127.0.0.1:9000", f"endpoint: http://key:{SECRET}@127.0.0.1:9000"),
     1, (SECRET,)),
    ("key-pasted", edited("deploy_key: /var/lib/homelab-lab/keys/deploy_ed25519",
                          "deploy_key: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n"
                          "    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
                          "    -----END OPENSSH PRIVATE KEY-----"), 1, ("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",)),
    ("three-field-problems", edited("vmid: 200", "vmid: 0").replace("packages: [rsync, python3, git]",
                                                                      "packages: [rsync, python3, 'git;id']").replace(
        "memory: 512", "memory: 0"), 3, ()),
    ("two-rule-problems", edited("ip: 198.18.0.201", "ip: 198.18.0.255").replace("vmid: 201", "vmid: 200"), 2, ()),
    ("missing-role", edited("roles: [app_demo]", "roles: [app_demoo]"), 1, ()),
    ("missing-terraform-env", edited("environment: lab", "environment: staging"), 1, ()),
    ("service-undeclared", edited("services: [prometheus, grafana,", "services: [prometheus, grafana, grafanna,"), 1, ()),
]


@pytest.mark.parametrize(("text", "lines", "secrets"), [(t, n, s) for _, t, n, s in BROKEN],
                         ids=[i for i, _, _, _ in BROKEN])
def test_check_refuses_with_one_line_per_problem(tmp_path, text, lines, secrets):
    """Exit 1, one stderr line per problem naming the file, no traceback, no secret, nothing written."""
    write(tmp_path, text)
    before = sorted(tmp_path.iterdir())
    errors = assert_refused(run_check(tmp_path, "check", "inv.yml"), lines, *secrets)
    assert all(line.startswith("inv.yml: ") for line in errors), errors
    assert sorted(tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("setup", ["directory", "dangling-link", "symlink-loop", "empty", "missing"])
def test_check_names_a_path_that_is_not_an_inventory(tmp_path, setup):
    """A directory, a link to nothing or to itself, an empty or missing file: one line, exit 1."""
    path = tmp_path / "inv.yml"
    if setup == "directory":
        path.mkdir()
    elif setup == "dangling-link":
        path.symlink_to("nowhere.yml")
    elif setup == "symlink-loop":
        path.symlink_to("inv.yml")
    elif setup == "empty":
        path.write_text("")
    [error] = assert_refused(run_check(tmp_path, "check", "inv.yml"), 1)
    assert error.startswith("inv.yml: ")


def test_check_of_several_files_reports_each(tmp_path):
    """Several paths: each bad one has its lines, each good one its ok line, exit 1 if any is bad."""
    write(tmp_path, edited("protected: true", "protected: on"), "bad.yml")
    done = run_check(tmp_path, "check", "bad.yml", str(LAB))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("bad.yml: line ") and len(done.stderr.splitlines()) == 1
    assert "lab.yml: ok" in done.stdout


@pytest.mark.parametrize("args", [[], ["nonsense"], ["check", "--frobnicate"], ["tfvars", "a", "b"]])
def test_usage_errors_are_a_usage_line_not_a_traceback(tmp_path, args):
    """A wrong command line: argparse's usage and exit 2."""
    done = run_check(tmp_path, *args)
    assert done.returncode == 2 and "usage: python -m plugins.inventory" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("module", "command"), [("plugins.inventory", "tfvars"), ("plugins.stack", "ansible")])
def test_derived_output_of_a_broken_inventory_is_one_line(tmp_path, module, command):
    """tfvars and the stack's ansible refuse a broken inventory with the same one line, printing no JSON."""
    write(tmp_path, edited("vmid: 200", "vmid: 0200"))
    assert_refused(run_check(tmp_path, command, "inv.yml", module=module), 1)


def test_the_inventory_names_where_the_ansible_inventory_went(tmp_path):
    """`python -m plugins.inventory ansible` (the stack's now) is one line naming the command that prints it."""
    done = run_check(tmp_path, "ansible", "inv.yml")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == ["the Ansible inventory is plugins/stack's: python -m plugins.stack ansible [PATH]"]


def test_the_stack_prints_the_ansible_inventory_of_a_valid_one(tmp_path):
    """`python -m plugins.stack ansible PATH`: the JSON the deploy runs site.yml with, nothing on stderr."""
    done = run_check(ROOT, "ansible", str(LAB), module="plugins.stack")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert json.loads(done.stdout) == ansible_inventory(load_inventory(LAB))


def test_help_says_what_each_level_checks(tmp_path):
    """`check --help` names the three levels and says homelab.yml validates without --here."""
    done = run_check(tmp_path, "check", "--help")
    assert done.returncode == 0
    for fragment in ("structure", "repository", "this machine", "--here", "homelab.yml validates anywhere"):
        assert fragment in done.stdout, done.stdout


# --- the repository cross-checks --------------------------------------------------------------------

def test_the_lab_inventory_agrees_with_the_repository():
    """Roles, Terraform directories and the app_demo role's own facts agree with the declarations."""
    assert repository_problems(load_inventory(LAB)) == []


def fake_repository(root: Path, port: int = 80) -> Path:
    """A minimal checkout: the app_demo role serving app-demo-frontend on `port`, terraform/envs/lab."""
    role = root / "ansible" / "roles" / "app_demo"
    (role / "tasks").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "tasks" / "main.yml").write_text("---\n")
    (role / "defaults" / "main.yml").write_text(f"app_demo_container_name: app-demo-frontend\napp_demo_port: {port}\n")
    for role_name in ("proxy", "utilities", "github_runner", "monitoring"):
        (root / "ansible" / "roles" / role_name / "tasks").mkdir(parents=True)
        (root / "ansible" / "roles" / role_name / "tasks" / "main.yml").write_text("---\n")
    (root / "terraform" / "envs" / "lab").mkdir(parents=True)
    (root / "terraform" / "envs" / "lab" / "main.tf").write_text("")
    for part, exposed in (("backend", 3000), ("frontend", 80)):
        (root / "app-demo" / part).mkdir(parents=True)
        (root / "app-demo" / part / "Dockerfile").write_text(f"FROM node\nEXPOSE {exposed}\n")
    return root


def test_a_role_port_that_disagrees_with_the_declaration_is_named(tmp_path):
    """The app's declarations listen on 3000 and 80; the app_demo role's defaults saying 9090 is one problem."""
    [(key, message)] = repository_problems(load_inventory(LAB), fake_repository(tmp_path, port=9090))
    assert key == "hosts[app-demo].services[1]"
    assert ("app_demo_port is 9090, but services/app-demo-backend.yml, services/app-demo-frontend.yml say 80 or 3000"
            in message), message


def test_an_image_that_does_not_expose_the_declared_port_is_named(tmp_path):
    """app-demo/frontend/Dockerfile EXPOSEs 8080 where services/app-demo-frontend.yml publishes 80: one problem."""
    root = fake_repository(tmp_path, port=80)
    (root / "app-demo" / "frontend" / "Dockerfile").write_text("FROM node\nEXPOSE 8080/tcp\n")
    [(key, message)] = repository_problems(load_inventory(LAB), root)
    assert key == "hosts[app-demo].services[2]"
    assert message == ("app-demo/frontend/Dockerfile EXPOSEs 8080, but services/app-demo-frontend.yml publishes "
                       "container port 80")


def test_group_vars_may_not_be_a_second_home(tmp_path):
    """A port in ansible/playbooks/group_vars/all.yml is a second home of a service's fact: one problem."""
    root = fake_repository(tmp_path)
    (root / "ansible" / "playbooks" / "group_vars").mkdir(parents=True)
    (root / "ansible" / "playbooks" / "group_vars" / "all.yml").write_text("app_demo_port: 8080\n")
    [(_, message)] = repository_problems(load_inventory(LAB), root)
    assert "app_demo_port is a second home of a service's port" in message


def test_missing_roles_and_terraform_directory_are_named(tmp_path):
    """A role without tasks/main.yml and an environment without terraform/envs/<env>: a line each."""
    root = fake_repository(tmp_path / "repo")
    document = lab_document()
    document["environment"] = "staging"
    document["hosts"][0]["roles"] = ["proxi"]
    problems = dict(repository_problems(load_inventory(write(tmp_path, document)), root))
    assert problems["hosts[proxy].roles[0]"].startswith("role 'proxi' has no ansible/roles/proxi/tasks/main.yml")
    assert "expected one of: app_demo, github_runner, monitoring, proxy, utilities" in problems["hosts[proxy].roles[0]"]
    assert problems["environment"].startswith("'staging' has no Terraform directory terraform/envs/staging")
    assert "expected one of: lab" in problems["environment"]


# --- this machine -----------------------------------------------------------------------------------

def machine_inventory(tmp_path: Path, key_mode: int = 0o600, public: str = "ssh-ed25519 AAAA deploy\n"):
    """The lab inventory with its CA file and deploy key in tmp_path."""
    key = tmp_path / "deploy_ed25519"
    key.write_text("not a real key\n")
    key.chmod(key_mode)
    (tmp_path / "deploy_ed25519.pub").write_text(public)
    (tmp_path / "ca.pem").write_text("not a real certificate\n")
    for name in ("proxy.pem", "proxy.key"):
        (tmp_path / name).write_text("not a real certificate\n")
    document = lab_document()
    document["stack"]["tls"] = {"cert_file": str(tmp_path / "proxy.pem"), "key_file": str(tmp_path / "proxy.key"),
                                "ca_file": str(tmp_path / "ca.pem")}
    document["runner"]["deploy_key"] = str(key)
    document["proxmox"]["ca_file"] = str(tmp_path / "ca.pem")
    return load_inventory(write(tmp_path, document))


def test_files_present_on_this_machine_pass(tmp_path):
    """CA file, key (mode 0600) and .pub present and not empty: no problem."""
    assert machine_problems(machine_inventory(tmp_path)) == []


def test_a_key_others_can_read_is_named(tmp_path):
    """ssh refuses a private key readable by others: said before the deploy tries."""
    [(key, message)] = machine_problems(machine_inventory(tmp_path, key_mode=0o644))
    assert key == "runner.deploy_key" and "has mode 0644" in message and "chmod 600" in message


def test_an_empty_public_key_and_a_missing_ca_are_named(tmp_path):
    """An empty .pub (incident #6) and a CA file gone: one problem each, naming the key."""
    inventory = machine_inventory(tmp_path, public="")
    (tmp_path / "ca.pem").unlink()
    problems = machine_problems(inventory)
    assert [k for k, _ in problems] == ["proxmox.ca_file", "stack.tls.ca_file", "runner.deploy_key"]
    assert "does not exist on this machine" in problems[0][1] and "is empty" in problems[2][1]


def test_check_here_reads_no_key(tmp_path):
    """--here looks at the key file, never into it: its content appears nowhere."""
    inventory = machine_inventory(tmp_path, key_mode=0o640)
    (tmp_path / "deploy_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SECRET}\n")
    done = run_check(tmp_path, "check", "--here", inventory.source)
    assert_refused(done, 1, SECRET)


# --- the suites' collection -------------------------------------------------------------------------

COLLECTED = [
    ("octal", edited("vmid: 200", "vmid: 0200"), "0200 is a zero-padded number"),
    ("secret", edited("token_id: root@pam!lab", f"token_id: root@pam!lab={SECRET}"), "followed by more"),
    ("directory", None, "is a directory"),
    # a list as hostname with a second mistake once crashed both (TypeError: unhashable type: 'list')
    ("hostname-list", edited("hostname: proxy", "hostname: [proxy]").replace("vmid: 250", "vmid: 25"),
     "hosts[0].hostname: expected a string, found ['proxy']"),
]


@pytest.mark.parametrize("suite", ["suites/health", "suites/deploy"])
@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in COLLECTED], ids=[i for i, _, _ in COLLECTED])
def test_collecting_a_suite_with_a_broken_inventory_is_one_line(tmp_path, suite, text, expected):
    """`pytest SUITE --inventory BAD --collect-only -q`: exit 4, one `ERROR:` line, no traceback, no secret."""
    bad = tmp_path / "bad.yml"
    if text is None:
        bad.mkdir()
    else:
        bad.write_text(text)
    done = subprocess.run([sys.executable, "-m", "pytest", suite, "--inventory", str(bad), "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "Traceback" not in output and SECRET not in output, output
    errors = [line for line in output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {bad}: ") and expected in errors[0], errors
    assert "INTERNALERROR" not in output, output
