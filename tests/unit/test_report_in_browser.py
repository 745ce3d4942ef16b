"""The rendered report, opened in headless Chromium: the stages and the hosts are in the page, the trend carries.

Two runs of the small deploy + health suite, each rendered as `make report` does (allurerc.json, the history
outside the results), served on 127.0.0.1 and opened with Debian's chromium (--dump-dom, --screenshot). The
screenshot is kept as reports/allure-report.png for a person to look at.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from review_suite import review_run

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALLURE = ROOT / "node_modules" / ".bin" / "allure"
SCREENSHOT = ROOT / "reports" / "allure-report.png"
# No network beyond the loopback server, no first-run work, a profile of its own (scripts/install.sh: chromium).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--virtual-time-budget=15000"]

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium (scripts/install.sh installs it)"),
    pytest.mark.skipif(not ALLURE.exists(), reason="no node_modules/.bin/allure (scripts/install.sh installs it)"),
]


def render(results: Path, report: Path, history: Path, config_dir: Path) -> None:
    """`make report` on these results: the project's allurerc.json with this test's output and history paths."""
    config = json.loads((ROOT / "allurerc.json").read_text())
    config.update(output=str(report), historyPath=str(history))
    path = config_dir / "allurerc.json"
    path.write_text(json.dumps(config))
    shutil.rmtree(report, ignore_errors=True)
    done = subprocess.run([str(ALLURE), "generate", str(results), "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and (report / "index.html").is_file(), done.stdout + done.stderr


@pytest.fixture
def served(tmp_path):
    """A loopback HTTP server for a directory: give it the directory, get its URL."""
    servers = []

    def serve(directory: Path) -> str:
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without a log line per request."""

    def log_message(self, format, *args) -> None:
        pass


def chromium(url: str, profile: Path, *action: str) -> subprocess.CompletedProcess:
    """One headless Chromium run on a fresh profile."""
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=120, check=False)


def visible_text(dom: str) -> str:
    """The page's text without its scripts and styles."""
    dom = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_the_report_shows_stages_hosts_environment_and_the_trend(pytester, monkeypatch, tmp_path, served):
    """Chromium finds the epics, the stages, the failing host and its test, the environment, and a second run."""
    history = tmp_path / "allure-history" / "history.jsonl"
    report = tmp_path / "allure-report"
    for run_id in ("review1", "review2"):
        results = tmp_path / f"results-{run_id}"
        review_run(pytester, monkeypatch, results, "--run-id", run_id)
        render(results, report, history, tmp_path)
    assert len(history.read_text().splitlines()) == 2  # one point per render: the trend's two runs

    url = served(report)
    dumped = chromium(url, tmp_path / "profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    text = visible_text(dumped.stdout)
    for expected in ("deploy", "health", "plan", "snapshot", "ansible", "rollback", "proxy", "app-demo",
                     "ansible › app-demo › the host is configured", "environment", "lab", "homelab", "review2"):
        assert expected in text, f"{expected!r} not in the rendered page: {text[:3000]}"
    assert "New tests" not in text, "the second render counts every test as new: the history did not carry"

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = chromium(url, tmp_path / "profile-shot", f"--screenshot={SCREENSHOT}")
    assert shot.returncode == 0 and SCREENSHOT.stat().st_size > 10_000, shot.stderr[-2000:]
