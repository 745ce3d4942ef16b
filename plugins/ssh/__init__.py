"""SSH to the hosts: one ControlMaster per host (pool), stopped over its control socket (mux),
and each environment's pinned host keys (known_hosts)."""
