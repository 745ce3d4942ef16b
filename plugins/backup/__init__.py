"""Backups of the homelab, as the inventory's `backup:` policy says: PVE's vzdump through the API, consistent
application dumps on the hosts, an encrypted restic copy off the node (S3), pruned by the same retention.

credentials (the policy's secrets by name → their values, or one line) → dumps (take the hosts' dumps over SSH, pull
them to the runner) → offsite (restic: init, backup, forget --prune, check) → run (`make backup`: every host
now, a line each; job: the node's storage and scheduled job) → cli, __main__ (`python -m plugins.backup`). PVE's calls
(storage, vzdump, /cluster/backup) are plugins/proxmox/backups.py; what each host dumps is plugins/stack/backup_dumps.py.
"""
