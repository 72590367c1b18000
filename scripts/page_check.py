"""Loads the page (scripts/web.sh) in headless Chromium through chromedriver's WebDriver API,
waits until the page has run its checks, prints its report, saves a screenshot, and exits 0
only if the page says every check passed.

Usage: python3 scripts/page_check.py URL SCREENSHOT.png
"""

import base64
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

TIMEOUT_S = 600
# Chromium's flags for WebGPU headless are the browser suite's (web/webdriver.json).
CAPS = json.loads((pathlib.Path(__file__).parent.parent / "web" / "webdriver.json").read_text())


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


def main():
    url, screenshot = sys.argv[1], sys.argv[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = subprocess.Popen([shutil.which("chromedriver"), f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if call(base, "GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        options = dict(CAPS["goog:chromeOptions"])
        options["args"] = options["args"] + ["--window-size=1000,1400"]
        session = call(base, "POST", "/session",
                       {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})["sessionId"]
        s = f"/session/{session}"
        try:
            call(base, "POST", s + "/url", {"url": url})
            deadline = time.time() + TIMEOUT_S
            status = "loading"
            while time.time() < deadline:
                status = call(base, "POST", s + "/execute/sync",
                              {"script": "return document.body.dataset.status", "args": []})
                if status in ("pass", "fail", "error"):
                    break
                time.sleep(0.5)
            report = call(base, "POST", s + "/execute/sync", {
                "script": "return ['browser-adapter', 'adapter', 'rows', 'summary']"
                          ".map(id => document.getElementById(id).innerText).join('\\n')",
                "args": []})
            print(report)
            png = base64.b64decode(call(base, "GET", s + "/screenshot"))
            pathlib.Path(screenshot).write_bytes(png)
            print(f"page status: {status}; screenshot: {screenshot}")
        finally:
            call(base, "DELETE", s)
    finally:
        driver.terminate()
    return 0 if status == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
