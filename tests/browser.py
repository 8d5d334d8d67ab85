"""A headless Chromium for tests, driven over the DevTools protocol on a pipe.

Debian's ``chromium`` only (``scripts/install-test-services.sh`` installs it): no driver
binary, no Python package and nothing downloaded at run time. Chromium is started with
``--remote-debugging-pipe``: it reads protocol messages (JSON, each ended by a NUL byte)
from file descriptor 3 and writes its answers and events to descriptor 4.

:func:`inspect_page` opens a local page at a given width and reports what a reader's
browser would see: console errors, requests, images that do not decode, elements wider than
the page, in-page links without a target, and a screenshot of the first screen.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: where the test-services script puts the browser
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
INSTALL_SCRIPT = "scripts/install-test-services.sh"


def chromium_binary() -> str | None:
    """The Chromium executable (``KO_CHROMIUM`` overrides), or None when none is installed."""
    override = os.environ.get("KO_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


class BrowserError(RuntimeError):
    """The browser did not answer, or answered a command with an error."""


class Chromium:
    """One headless Chromium process and its protocol pipe; a context manager that always
    stops the process and removes its profile folder."""

    def __init__(self, binary: str, *, timeout: float = 30.0):
        self.binary = binary
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buffer = b""
        self._profile = tempfile.mkdtemp(prefix="ko-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # the child must see them as 3 and 4: move them out of the way of those numbers first
        child_read = _fd_above(to_browser_read, 10)
        child_write = _fd_above(from_browser_write, 10)

        def place_pipes() -> None:
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        command = [binary, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                   "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--force-color-profile=srgb",
                   "about:blank"]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to start its sandbox as root
        try:
            self.process = subprocess.Popen(command, pass_fds=(3, 4), preexec_fn=place_pipes,
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, start_new_session=True)
        finally:
            for fd in (child_read, child_write):  # the browser holds its ends now
                os.close(fd)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._from_browser, selectors.EVENT_READ)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser (its whole process group) and remove its profile."""
        if self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (BrowserError, OSError):
                pass  # it is killed below either way
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=10)
        self._selector.close()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    # --- protocol --------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no message from Chromium within {self.timeout} s")
            if not self._selector.select(timeout=left):
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed its protocol pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept in
        :attr:`events`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, *, session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the next event ``method`` (of ``session``) not yet seen."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = len(self.events)
        for event in self.events[:seen]:
            if event.get("method") == method and event.get("sessionId") == session and not event.get("_taken"):
                event["_taken"] = True
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                event["_taken"] = True
                return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except BrowserError:
            if self.process.poll() is not None:
                raise


def _fd_above(fd: int, minimum: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, minimum)
    os.close(fd)
    return moved


@dataclass
class PageReport:
    """What :func:`inspect_page` saw on one page."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    #: requests the page made (beyond itself and data: URIs), and those the browser blocked
    requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    images: int = 0
    overflowing: list[str] = field(default_factory=list)
    page_width: float = 0.0
    links: list[str] = field(default_factory=list)
    unresolved_links: list[str] = field(default_factory=list)
    has_contents: bool = False
    scripts: int = 0
    handlers: list[str] = field(default_factory=list)
    title: str = ""
    text: str = ""
    screenshot: Path | None = None


# what the page shows, measured in the page (DevTools evaluation is not subject to its policy)
_MEASURE = """(() => {
  const width = document.documentElement.clientWidth;
  const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') +
      ' ' + (el.innerText || el.alt || '').trim().slice(0, 60).replace(/\\s+/g, ' ');
  const wide = [...document.querySelectorAll('table, img, figure, svg, pre, main > *, section > *')]
      .filter(el => el.getBoundingClientRect().right > width + 0.5 || el.scrollWidth > el.clientWidth + 1 &&
                    getComputedStyle(el).overflowX !== 'visible')
      .map(el => describe(el) + ' (right edge ' + Math.round(el.getBoundingClientRect().right) + ' px)');
  const images = [...document.images].map(img => ({src: img.currentSrc.slice(0, 40), alt: img.alt,
      ok: img.complete && img.naturalWidth > 0}));
  const links = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href'));
  const unresolved = links.filter(h => h.length < 2 || !document.getElementById(decodeURIComponent(h.slice(1))));
  const handlers = [...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
      .filter(a => a.name.toLowerCase().startsWith('on')).map(a => el.tagName.toLowerCase() + ' ' + a.name));
  return {width, scrollWidth: document.documentElement.scrollWidth, wide, images, links, unresolved,
          contents: !!document.getElementById('contents'), scripts: document.scripts.length, handlers,
          title: document.title, text: document.body ? document.body.innerText : ''};
})()"""


def inspect_page(page: Path, *, width: int = 1000, height: int = 800, screenshot: Path | None = None,
                 binary: str | None = None) -> PageReport:
    """Open ``page`` (a local HTML file) in headless Chromium ``width`` px wide and report what
    it shows; save a PNG of the first screen to ``screenshot`` if given."""
    binary = binary or chromium_binary()
    if binary is None:
        raise BrowserError(f"no Chromium installed; run {INSTALL_SCRIPT}")
    url = page.resolve().as_uri()
    report = PageReport(url)
    with Chromium(binary) as browser:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired", session=session)
        browser.drain(0.3)  # late console messages (a policy violation is reported after load)
        measured = browser.send("Runtime.evaluate", {"expression": _MEASURE, "returnByValue": True},
                                session=session)
        if "exceptionDetails" in measured:
            raise BrowserError(f"measuring {url}: {measured['exceptionDetails']}")
        value = measured["result"]["value"]
        if screenshot is not None:
            shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        requested: dict[str, str] = {}
        blocked: set[str] = set()
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if event.get("sessionId") != session:
                continue
            if method == "Network.requestWillBeSent":
                request_url = params["request"]["url"]
                if request_url != url and not request_url.startswith("data:"):
                    requested[params["requestId"]] = request_url
            elif method == "Network.loadingFailed" and params.get("blockedReason"):
                blocked.add(params["requestId"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                      for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                report.console_errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                report.console_errors.append(f"{params['entry'].get('source')}: {params['entry'].get('text')}")
    report.requests = [u for i, u in requested.items() if i not in blocked]
    report.blocked_requests = [u for i, u in requested.items() if i in blocked]
    report.page_width = value["scrollWidth"]
    report.overflowing = list(value["wide"])
    if value["scrollWidth"] > value["width"]:
        report.overflowing.append(f"the page itself ({value['scrollWidth']} px wide in a {value['width']} px window)")
    report.images = len(value["images"])
    report.broken_images = [f"{i['alt'] or '(no alt)'} {i['src']}" for i in value["images"] if not i["ok"]]
    report.links = list(value["links"])
    report.unresolved_links = list(value["unresolved"])
    report.has_contents = bool(value["contents"])
    report.scripts = int(value["scripts"])
    report.handlers = list(value["handlers"])
    report.title = value["title"]
    report.text = value["text"]
    return report
