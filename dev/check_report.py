"""Render run-report.html in headless Chromium, as the director's browser would, and check it.

    python -m dev.check_report demo/out [--shots DIR]

For every `<out>/<YYYY-MM>/run-report.html`: open it from disk with the network cut off
(every host name resolves to nothing, a dead proxy), through the DevTools protocol over a
pipe (no port, no extra package), and check that

- the page loads nothing but itself: no style, script, font or image is requested, and no
  request fails (`Network.requestWillBeSent`, `Network.loadingFailed`), no console error;
- it shows the summary (two lines), three charts (SVG elements with text in them), the
  township table (a row per township and a total row), in that order;

then save a full-page PNG (`<shots>/run-report-<YYYY-MM>.png`, default beside the page)
for a person to look at. Exit status 1 with the problems found. `make check-report` runs it
on the demo; tests/pipeline/test_report_page.py runs it when Chromium is installed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    # The network is off: any request for a host fails, and nothing goes through a proxy.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--remote-debugging-pipe",
]
WIDTH = 1100
# What the page must show, read from the rendered DOM (not from the file's text).
PROBE = """(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  const order = q("body > section").map((s) => s.id);
  return {
    order,
    summary: q("#summary p").map((p) => p.innerText.trim()).filter((t) => t),
    charts: q("#charts figure").map((f) => ({
      svg: f.querySelectorAll("svg").length,
      texts: f.querySelectorAll("svg text").length,
      width: f.querySelector("svg") ? f.querySelector("svg").getBoundingClientRect().width : 0,
    })),
    townshipRows: q("#townships table tbody tr").length,
    totalRow: q("#townships table tbody tr.total td:first-child").map((t) => t.innerText),
    scripts: q("script").length,
    height: document.documentElement.scrollHeight,
  };
})()"""


@dataclass
class PageCheck:
    page: Path
    shot: Path | None = None
    problems: list[str] = field(default_factory=list)
    dom: dict[str, Any] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


def chromium() -> str | None:
    """The Chromium binary, if installed (Debian: chromium)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Browser:
    """Chromium with the DevTools protocol on fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child, self._send = os.pipe()
        self._receive, from_child = os.pipe()

        def fds() -> None:  # the protocol's fixed descriptors in the child
            # Moved out of the way first: either pipe end may itself be fd 3 or 4.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open past preexec_fn, which made them
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._receive, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._send)
        os.close(self._receive)


def check_page(page: Path, shot: Path, binary: str) -> PageCheck:
    """Load `page` offline, probe it, save a full-page screenshot to `shot`."""
    result = PageCheck(page=page, shot=shot)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        browser = _Browser(binary, Path(profile))
        try:
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Network", "Runtime", "Log"):
                browser.call(f"{domain}.enable", session)
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=WIDTH,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            browser.events.clear()
            browser.call("Page.navigate", session, url=page.resolve().as_uri())
            browser.wait_for("Page.loadEventFired")
            probe = browser.call("Runtime.evaluate", session, expression=PROBE, returnByValue=True)
            result.dom = probe["result"]["value"]
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=WIDTH,
                height=int(result.dom["height"]),
                deviceScaleFactor=1,
                mobile=False,
            )
            png = browser.call("Page.captureScreenshot", session, format="png")["data"]
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(png))
        finally:
            browser.close()
    result.requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    result.problems = _problems(result, browser.events)
    return result


def _problems(result: PageCheck, events: list[dict[str, Any]]) -> list[str]:
    problems = []
    document = result.page.resolve().as_uri()
    for url in result.requests:
        if url != document:
            problems.append(f"the page loads another resource: {url}")
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Network.loadingFailed":
            problems.append(f"a load failed: {params.get('errorText')}")
        if method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"console error: {params['entry'].get('text')}")
        if method == "Runtime.exceptionThrown":
            problems.append("a script error")
    dom = result.dom
    expected = ["summary", "charts", "townships", "precision", "deliveries", "warnings"]
    shown = [s for s in dom.get("order", []) if s in expected]
    if shown != expected:
        problems.append(f"sections {shown}, expected {expected} in that order")
    if len(dom.get("summary", [])) != 2:
        problems.append(f"the summary has {len(dom.get('summary', []))} lines, not 2")
    charts = dom.get("charts", [])
    if len(charts) != 3 or any(c["svg"] != 1 or c["texts"] < 3 for c in charts):
        problems.append(f"expected 3 charts with an SVG and text each, found {charts}")
    if any(c["width"] < 300 for c in charts):
        problems.append(f"a chart is drawn too narrow: {charts}")
    if dom.get("townshipRows", 0) < 2 or dom.get("totalRow") != ["合计"]:
        problems.append("the township table lacks township rows or its 合计 row")
    if dom.get("scripts"):
        problems.append("the page holds a script")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the output folder (<out>/<YYYY-MM>/...)")
    parser.add_argument("--shots", type=Path, help="where the screenshots go")
    args = parser.parse_args(argv)
    binary = chromium()
    if binary is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    pages = sorted(args.out.glob("20[0-9][0-9]-[0-9][0-9]/run-report.html"))
    if not pages:
        print(f"no run-report.html under {args.out}", file=sys.stderr)
        return 2
    failed = 0
    for page in pages:
        period = page.parent.name
        shot = (args.shots or page.parent) / f"run-report-{period}.png"
        result = check_page(page, shot, binary)
        charts = len(result.dom.get("charts", []))
        rows = result.dom.get("townshipRows", 0)
        status = "ok" if not result.problems else "FAILED"
        itself = result.requests == [page.resolve().as_uri()]
        print(
            f"{period}: {status}: {charts} charts, {rows} township rows, "
            f"{len(result.requests)} request(s){' (the page itself)' if itself else ''}; "
            f"screenshot {shot}"
        )
        for problem in result.problems:
            print(f"  - {problem}")
        failed += bool(result.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
