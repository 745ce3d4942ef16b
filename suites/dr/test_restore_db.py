"""One database restored alone from the off-site copy into its running service: a row written before the copy is
back, one written after it is gone, the host healthy (make restore-db)."""

from __future__ import annotations

import pytest

from plugins.backup.drill import new_marker
from plugins.backup.markers import DatabaseMarker, MarkerProblem
from plugins.backup.restore_db import database_choice, restore_database
from plugins.backup.run import run_backup
from plugins.report.allure_output import attach_text


def test_one_database_comes_back_from_the_offsite_copy(inventory, proxmox, ssh_pool, drilled_database,
                                                       record_property):
    """Row, off-site copy (dumps and restic only: no vzdump), row, restore-db: the first row back, the second gone."""
    host, entry = database_choice(inventory, *drilled_database)
    marker = DatabaseMarker(ssh_pool, host, entry)
    before, after = new_marker("db-before"), new_marker("db-after")
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    try:
        marker.write(before)
        assert run_backup(inventory, proxmox, hosts=[host.hostname], say=say, vzdump=False) == 0, "\n".join(lines)
        marker.write(after)
        rc = restore_database(inventory, host.hostname, entry["database"], say=say)
        attach_text(f"restore-db {host.hostname}/{entry['database']}", "\n".join(lines))
        assert rc == 0, "\n".join(lines)
        record_property("restore_db_line", lines[-1])
        assert marker.present(before), f"{marker.where}: {before}, written before the off-site copy, is not back"
        assert not marker.present(after), f"{marker.where}: {after}, written after the off-site copy, survived"
    except MarkerProblem as problem:
        pytest.fail(str(problem), pytrace=False)
    finally:
        for name in (before, after):
            try:
                marker.remove(name)
            except MarkerProblem:
                pass
