"""The official image's start-up checks in ONE start of Django (fed to `netbox shell`): `migrate --check`, and
when it finds migrations to apply, `migrate` and its housekeeping; then the superuser (super_user.py) unless
SKIP_SUPERUSER. The official entrypoint runs each as a command of its own: every one loads Django again, which
is most of a restart's time after a rollback."""

import os

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

executor = MigrationExecutor(connection)
if executor.migration_plan(executor.loader.graph.leaf_nodes()):
    print("⚙️ applying database migrations", flush=True)
    call_command("migrate", interactive=False)
    for command in ("remove_stale_contenttypes", "clearsessions"):
        try:
            call_command(command, **({"interactive": False} if command == "remove_stale_contenttypes" else {}))
        except Exception as exc:  # noqa: BLE001 - housekeeping, as the official image's `|| :`
            print(f"{command}: {exc}", flush=True)
if os.environ.get("SKIP_SUPERUSER", "false") != "true":
    with open("/opt/netbox/docker/super_user.py") as source:
        exec(compile(source.read(), source.name, "exec"))  # noqa: S102 - the image's own file, as `shell <` runs it
