"""The restore drill on each drilled host: the first marker back, the second gone, the host healthy; the recovery
time (lost → healthy) and the recovery point go to the output and the report."""

from __future__ import annotations

import pytest

from plugins.backup.drill import clean_markers, run_drill
from plugins.backup.markers import MarkerProblem, markers_of
from plugins.report.allure_output import attach_text


def test_the_lost_host_comes_back_to_its_recovery_point(inventory, proxmox, ssh_pool, environment, drilled_host,
                                                        record_property):
    """Markers, backup, marker, the CT destroyed with its snapshots, restore from the newest backup, converge,
    health: every marker written before the backup is back, every one written after it is not."""
    try:
        markers = markers_of(inventory, drilled_host, ssh_pool, environment)
    except MarkerProblem as problem:
        pytest.fail(str(problem), pytrace=False)
    result = run_drill(inventory, proxmox, drilled_host, markers, say=lambda line: print(line, flush=True))
    attach_text(f"restore drill of {drilled_host.hostname}", "\n".join(result.lines))
    if result.failure:
        pytest.fail(result.summary(), pytrace=False)
    record_property("recovery_time_s", f"{result.recovery_time:.1f}")
    record_property("recovery_point", result.recovery_point)
    try:
        assert all(result.back.values()), f"markers written before the backup not back: {result.back}"
        assert not any(result.kept_second.values()), \
            f"markers written after the backup survived the loss (no real loss?): {result.kept_second}"
    finally:
        clean_markers(markers, result)
