"""Notify: the result reaches the commit (or reports/deploy-result.md); notifying never fails the deploy.

After a failure the notification waits for the rollback, so that it can say how the rollback
went: plugins/deploy_finish.py sends it at session end.
"""

from __future__ import annotations

import pytest

from plugins import deploy_result, reporting

pytestmark = [pytest.mark.order(50), pytest.mark.stage("notify", always=True, plan_only=False)]


def test_the_result_is_reported(deployment):
    """The deploy's result is commented on the commit, or written to a file when no token is given (#14)."""
    if deployment.failed:
        deployment.stage("notify").summary = "deferred until the rollback has run"
        pytest.skip("the deploy failed: the notification is sent after the rollback, with its outcome")
    outcome = deploy_result.send(deployment)
    deployment.notification = outcome.message
    deployment.stage("notify").summary = outcome.message
    reporting.attach_text("notification", outcome.message)
    if not outcome.ok:
        pytest.skip(f"notification not delivered (the deploy itself passed): {outcome.message}")
