"""Primitives every package reuses: backoff (the one poll-until-done loop), fanout (the one thread fan-out),
this_machine (the host the suite runs on is never rolled back nor SSH-checked)."""
