"""What THIS machine must hold for the inventory: the files it names exist, are files, readable and not empty.

Apart from structure on purpose: homelab.yml's paths live on the owner's runner, so it validates anywhere,
and only `python -m plugins.inventory check --here` (run it on the runner) and the deploy itself look here
(its preflight checks the deploy key, the Proxmox client the CA file).
Key files are looked at, never read: nothing of a key can reach a message.
"""

from __future__ import annotations

import os
import stat

from plugins.inventory.errors import Problem
from plugins.inventory.model import Inventory


def machine_problems(inventory: Inventory) -> list[Problem]:
    """Every file the inventory names that this machine lacks, cannot read, or holds empty or too open."""
    files = []
    if inventory.proxmox.ca_file:
        files.append(("proxmox.ca_file", inventory.proxmox.ca_file, "the CA file"))
    if inventory.stack:
        tls = inventory.stack.tls
        files.append(("stack.tls.cert_file", tls.cert_file, "the proxy's certificate"))
        files.append(("stack.tls.key_file", tls.key_file, "the proxy's private key"))
        if tls.ca_file:
            files.append(("stack.tls.ca_file", tls.ca_file, "the CA file"))
    problems = [(where, problem) for where, path, what in files if (problem := _file_problem(path, what))]
    key = inventory.runner.deploy_key
    key_problem = _file_problem(key, "the private deploy key") or _private_key_mode(key)
    if key_problem:
        problems.append(("runner.deploy_key", key_problem))
    public_problem = _file_problem(key + ".pub", "the deploy key's public half")
    if public_problem:
        problems.append(("runner.deploy_key", public_problem))
    return problems


def _file_problem(path: str, what: str) -> str:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"{what} {path} does not exist on this machine (expected an existing file)"
    except OSError as error:
        return f"{what} {path}: {(error.strerror or 'cannot stat').lower()} (expected an existing file)"
    if not stat.S_ISREG(info.st_mode):
        return f"{what} {path} is not a regular file (expected a file)"
    if info.st_size == 0:
        return f"{what} {path} is empty (expected its contents)"
    if not os.access(path, os.R_OK):
        return f"{what} {path} is not readable by this user (uid {os.getuid()}; expected a readable file)"
    return ""


def _private_key_mode(path: str) -> str:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        return (f"the private deploy key {path} has mode {mode:04o}: ssh refuses a key others can read "
                "(expected 0600: chmod 600 it)")
    return ""
