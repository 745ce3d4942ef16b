"""Notify: the result reaches the commit (or reports/deploy-result.md); notifying never fails the deploy.

After a failure the notification waits for the rollback, so that it can say how the rollback went:
plugins/deploy/finish/end.py sends it at the end of the run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from plugins.deploy.finish import run_result
from plugins.report import allure_output

if TYPE_CHECKING:
    from plugins.deploy.finish.notifier import NotifyOutcome
    from plugins.deploy.session import DeploySession


def notify(deployment: DeploySession) -> NotifyOutcome | None:
    """Send the result of a deploy that did not fail, recorded on the session; None when it is deferred."""
    if deployment.failed:
        deployment.stage("notify").summary = "deferred until the rollback has run"
        return None
    # The comment is sent from inside this stage: it says the stage passed, which a delivered comment proves.
    record = deployment.stage("notify")
    record.outcome, record.summary, record.ended = "passed", "this notification", time.monotonic()
    outcome = run_result.send(deployment)
    if not outcome.ok:
        record.outcome = "running"  # not delivered: the test's own outcome (a skip) is the stage's
    deployment.notification = outcome.message
    record.summary = outcome.message
    allure_output.attach_text("notification", outcome.message)
    return outcome
