"""Headless Chromium driven over the Chrome DevTools Protocol: just what the book's test needs.

One browser process with its own throw-away profile, one page, and three things to do with it:
go to a URL and wait for the load, evaluate JavaScript, take a screenshot. Everything stays on
127.0.0.1: the DevTools port, and the local server the test puts the site on.
"""
import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL = "Debian's chromium is missing: run `make browser` (as root: apt-get install chromium fonts-droid-fallback)"


def find_browser():
    """The path of a Chromium binary, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class Chromium:
    def __init__(self, binary, profile, width=1280, height=900, timeout=30):
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--disable-default-apps", "--disable-sync", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import websocket  # websocket-client (requirements-docs.txt)
            port = self._port(Path(profile) / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
                pages = [t for t in json.load(answer) if t["type"] == "page"]
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                                  suppress_origin=True)
        except Exception:
            self.close()
            raise
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _port(self, port_file):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode} before it listened")
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method, **params):
        """Call a DevTools method and return its result (events that arrive meanwhile are dropped)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression):
        """The value of a JavaScript expression (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=None, what=None):
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError as err:  # asked while the page was being replaced: ask the new one
                if not any(s in str(err) for s in ("navigated or closed", "context was destroyed",
                                                   "Cannot find context")):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what or expression}")
            time.sleep(0.1)

    def goto(self, url):
        """Load a page and wait until it and its images, scripts and styles have loaded."""
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href.split('#')[0] === {json.dumps(url.split('#')[0])} && "
                      "document.readyState === 'complete'", what=f"{url} to load")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
