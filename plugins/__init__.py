"""The suite's code, as packages of one concern each; the four with a plugin.py are its pytest entries.

inventory (the one source of truth), deploy (the pipeline, its stages, the end of a run), health (the check
registry and what answers it), proxmox, ssh, tools (terraform, playbooks), report (redaction, Allure,
tables), github (the API, the plan comment), shared (backoff, fan-out, this machine).
docs/reference/internals.md has every module. Nothing here imports lab/.
"""
