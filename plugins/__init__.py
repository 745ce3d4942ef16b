"""The suite's code, as packages of one concern each; the four with a plugin.py are its pytest entries.

inventory (the one source of truth: loads, validates, answers questions about the data), stack (what the
hosts run, rendered from the inventory: configuration files, host vars, the Ansible inventory), deploy (the
pipeline, its stages, the end of a run), health (the check registry and what answers it), proxmox, ssh, tools
(terraform, playbooks, the code scans), report (redaction, Allure, tables), github (the API, the plan comment),
backup (make backup: the hosts' dumps, restic off-site, the node's vzdump and job; make restore; the health
suite's backup watch), security (the read-only audit of suites/security and the firewall's exposure), shared
(backoff, fan-out, this machine, the secret-name rule).
docs/reference/internals.md has every module. Nothing here imports lab/; no import circle; inventory imports
only itself and shared, stack reads inventory (tests/unit/test_layout.py).
"""
