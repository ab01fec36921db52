"""Browser tests: Playwright driving Debian's Chromium against ``mutual serve`` on the demo workspace.

The demo workspace is built once per session and served on 127.0.0.1 by a real server process. Chromium comes
from Debian (``/usr/bin/chromium``; Playwright's own browsers cannot be downloaded here): when it is missing the
set-up installs it with apt, and the tests skip, saying why, only when that is impossible. Screenshots are kept
under ``$MUTUAL_TEST_ARTIFACTS`` (default ``tests/browser/artifacts/``). ``check_axe`` runs axe-core (vendored
from npm in ``tests/browser/vendor/``) and fails on any serious or critical violation.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).parent
AXE = HERE / "vendor" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("MUTUAL_TEST_ARTIFACTS", HERE / "artifacts"))


def _ensure_chromium() -> str | None:
    """None when Chromium is there (installing it with apt if need be), else why it cannot be."""
    if CHROMIUM.exists():
        return None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "Chromium is not installed (/usr/bin/chromium) and apt-get cannot install it here (not root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run([apt, "install", "-y", "-q", "chromium"], capture_output=True, text=True, env=env,
                          check=False, timeout=900)
    if done.returncode != 0 or not CHROMIUM.exists():
        return f"apt-get install chromium failed: {done.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    home: Path
    password: str
    plan_id: int
    trust: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo workspace served by ``mutual serve`` on a free loopback port."""
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (uv run --all-extras pytest)")
    why = _ensure_chromium()
    if why:
        pytest.skip(why)
    import mutual.demo as demo
    from mutual.app import WorkspaceError

    try:
        summary = demo.build_demo(tmp_path_factory.mktemp("browser") / "demo", seed=7, data_dir=None)
    except WorkspaceError as exc:
        pytest.skip(f"the demo needs the public data in ../shared/data: {exc}")
    assert summary.plan is not None, "the demo proposes a plan"
    port = _free_port()
    log = (tmp_path_factory.getbasetemp() / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "mutual", "serve", "--home", str(summary.home), "--port",
                             str(port), "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mutual serve did not start; see server.log in the pytest temp folder")
        time.sleep(0.3)
    trust = next(a["scope"] for a in summary.accounts if a["role"] == "trust_submitter")
    yield Server(base, summary.home, demo.DEMO_PASSWORD, int(summary.plan["id"]), trust)
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A signed-in page, with the content-security-policy violations and script errors it met."""

    page: Any
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def page_as(browser: Any, server: Server) -> Iterator[Callable[[str], Watched]]:
    """``page_as(user)``: a fresh browser context signed in through the login form as a demo user."""
    contexts = []

    def open_as(user: str) -> Watched:
        context = browser.new_context(base_url=server.base, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        watched = Watched(page)
        page.on("console", lambda msg: watched.problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: watched.problems.append(str(exc)))
        page.goto("/login")
        page.fill("#username", user)
        page.fill("#password", server.password)
        page.click("#sign-in")
        page.wait_for_load_state("networkidle")
        assert "/login" not in page.url, f"{user} could not sign in"
        return watched

    yield open_as
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_axe(page: Any) -> None:
    """axe-core on the page as it is: no serious or critical accessibility violation."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(AXE.read_text() + "\n;true")  # evaluated by the browser's debugger, outside the page's CSP
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                          ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
                          " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))")
    bad = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                                                for v in bad)
