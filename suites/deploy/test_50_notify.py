"""Notify: the result reaches the commit (or reports/deploy-result.md); notifying never fails the deploy.

After a failure the notification waits for the rollback, so that it can say how the rollback
went: plugins/deploy/finish/end.py sends it at session end. The work: plugins/deploy/stages/notify.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import notify

pytestmark = pytest.mark.stage("notify")


def test_the_result_is_reported(deployment):
    """The deploy's result is commented on the commit, or written to a file when no token is given (#14)."""
    outcome = notify.notify(deployment)
    if outcome is None:
        pytest.skip("the deploy failed: the notification is sent after the rollback, with its outcome")
    if not outcome.ok:
        pytest.skip(f"notification not delivered (the deploy itself passed): {outcome.message}")
