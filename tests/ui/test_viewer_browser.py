"""The viewer in a real browser: headless Chromium (the OS package) driven by selenium.

One browser for the module. The tests open the runs page, filter, open a run, move the
time-travel slider, watch an event another process appends appear, and check that stored XSS
payloads do not run. Without chromium/chromedriver they skip with one line, unless
``EVENTLOG_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from ui.ui_support import XSS, Seeded, Server, append_from_another_process

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


def _missing() -> str | None:
    for path in (CHROMIUM, DRIVER):
        if not os.path.exists(path):
            return f"{path} not installed (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("EVENTLOG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (EVENTLOG_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(f"browser tests skipped: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eventlog-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, condition: Any, timeout: float = 10.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_runs_page_filter_and_open_a_run(browser: Any, server: Server, seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server.base + "/")
    assert "runs" in browser.title
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tr.run-row")
    assert len(rows) >= 5
    Select(browser.find_element(By.ID, "f-status")).select_by_value("failed")
    browser.find_element(By.ID, "f-apply").click()
    wait(browser, lambda d: "status=failed" in d.current_url)
    statuses = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#runs .status")}
    assert statuses == {"failed"}
    link = browser.find_element(By.CSS_SELECTOR, f"a[href='/runs/{seeded.failed}']")
    link.click()
    wait(browser, lambda d: str(seeded.failed) in d.current_url)
    assert text_of(browser, "#run-status") == "failed"
    assert "run_tests timed out" in text_of(browser, "#run-error")
    assert "run_tests" in text_of(browser, "#tree")


def test_lineage_links_to_the_parent(browser: Any, server: Server, seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server.base}/runs/{seeded.grandchild}")
    assert browser.find_element(By.ID, "lineage").is_displayed()
    assert "effects unknown" in text_of(browser, "#unresolved")
    browser.find_element(By.ID, "lineage-parent").click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{seeded.child}"))
    assert str(seeded.grandchild)[:8] in text_of(browser, "#forks")


def test_slider_shows_the_state_at_seq_n(browser: Any, server: Server, seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{server.base}/runs/{seeded.done}")
    state = browser.find_element(By.ID, "state")
    wait(browser, lambda d: state.get_attribute("data-seq") == "9")  # the last event
    slider = browser.find_element(By.ID, "slider")
    slider.send_keys(Keys.HOME)  # seq 0
    for _ in range(4):
        slider.send_keys(Keys.ARROW_RIGHT)
    wait(browser, lambda d: state.get_attribute("data-seq") == "4")
    assert '"assistant_text": "Let me search."' in state.text
    assert "assistant_text" in text_of(browser, "#changes")
    assert text_of(browser, "#slider-seq") == "4"
    # expand an event to its full JSON
    browser.find_element(By.CSS_SELECTOR, "#seq-5 button.expand").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.json-row pre"))
    assert '"call": {' in text_of(browser, "tr.json-row pre")


def test_an_event_appended_by_another_process_appears(
    browser: Any, server: Server, seeded: Seeded
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server.base}/runs/{seeded.live}")
    wait(browser, lambda d: d.find_element(By.ID, "live-badge").is_displayed())
    before = int(text_of(browser, "#event-count"))
    append_from_another_process(seeded.db, seeded.live, "appended <b>elsewhere</b>")
    wait(browser, lambda d: d.find_elements(By.ID, f"seq-{before + 1}"))
    row = text_of(browser, f"#seq-{before + 1}")
    assert "TextDelta" in row
    assert "appended <b>elsewhere</b>" in row
    assert text_of(browser, "#event-count") == str(before + 1)


def test_stored_xss_does_not_run(browser: Any, server: Server, seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By

    paths = (f"/runs/{seeded.xss}", "/", f"/runs/{seeded.xss}/state?seq=3")
    for path in (*paths, f"/runs/{seeded.grandchild}"):
        browser.get(server.base + path)
        assert browser.execute_script("return window.__xss === undefined") is True, path
    browser.get(f"{server.base}/runs/{seeded.xss}")
    assert "<script>window.__xss=1</script>" in text_of(browser, "#tree")  # literally
    hrefs = [a.get_attribute("href") or "" for a in browser.find_elements(By.TAG_NAME, "a")]
    assert not [h for h in hrefs if h.startswith("javascript:")]
    assert XSS[:20] in browser.find_element(By.ID, "summary").text
