"""Take the viewer's screenshots for docs/how-to/viewer.md, with the real browser.

``.venv/bin/python docs/viewer_screenshots.py`` writes a demo store (``eventlog demo``),
starts ``eventlog ui`` on it, and saves PNGs of the runs, run, session and health pages under
``docs/how-to/img/`` with headless Chromium (the OS package) through selenium.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

HERE = Path(__file__).parent
OUT = HERE / "how-to" / "img"
EVENTLOG = str(Path(sys.executable).with_name("eventlog"))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/demo"
        subprocess.run([EVENTLOG, "demo", "--db", db], check=True, capture_output=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([EVENTLOG, "ui", "--db", db, "--port", str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            shoot(base, tmp)
        finally:
            server.terminate()
            server.wait(10)


def shoot(base: str, tmp: str) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1100,760",
        f"--user-data-dir={tmp}/profile",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(base + "/")
        runs = driver.page_source
        failed = re.findall(r'href="/runs/([0-9a-f-]{36})"', runs)
        driver.save_screenshot(str(OUT / "viewer-runs.png"))
        rid = failed[0]
        for r in failed:  # a run with a failed tool call, if there is one
            driver.get(f"{base}/runs/{r}")
            if "failed (" in driver.page_source:
                rid = r
                break
        driver.get(f"{base}/runs/{rid}")
        time.sleep(0.5)  # let the slider's first state arrive (a screenshot, not a test)
        driver.save_screenshot(str(OUT / "viewer-run.png"))
        sid = re.search(r'href="/sessions/([0-9a-f-]{36})"', driver.page_source)
        if sid:
            driver.get(f"{base}/sessions/{sid.group(1)}")
            driver.save_screenshot(str(OUT / "viewer-session.png"))
        driver.get(base + "/health?verify=1")
        driver.save_screenshot(str(OUT / "viewer-health.png"))
    finally:
        driver.quit()
    for png in OUT.glob("viewer-*.png"):  # 64 colours: a quarter of the size, same look
        from PIL import Image

        with Image.open(png) as image:
            small = image.convert("RGB").quantize(colors=64)
        small.save(png, optimize=True)


if __name__ == "__main__":
    main()
