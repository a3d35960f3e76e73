"""The wallboard in a real browser (issue 10.5): Debian's Chromium, driven by
Selenium through chromium-driver, against `dialtone api`'s app served by
uvicorn, with projections fed in-process, the routing process, a B2BUA worker
and softphones. A supervisor signs in on the page, a queue is provisioned, a
real SIP call waits in it and shows up, the agent logs in and is shown on the
call, and a click on Monitor (confirmed in the dialog) rings the supervisor's
own phone. A screenshot and the page's HTML are kept when it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from application.callcentre import CallCentreService
from application.identity.model import Role
from dialtone.bootstrap import http_app, inprocess_runners
from dialtone.migrations import apply_migrations
from domain.call import Call
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import StartPhone, centre, login, phone, provision_queue, router
from tests.fixtures.sip import StartWorker
from tests.integration.api_support import api_key
from tests.integration.auth_support import PASSWORD, add_user
from tests.integration.live_support import served

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone", "router"]

# Where a failure's screenshot and page are kept (.cache/ is git-ignored).
ARTIFACTS = Path(os.environ.get("DIALTONE_TEST_ARTIFACTS", ".cache/test-artifacts"))
WAIT_S = 60.0  # bounded: the machine is shared and SIP may be slow; polled every 50 ms


@pytest.fixture
def site(database_url: str, centre: CallCentreService) -> Iterator[str]:
    """`dialtone api`'s app on a loopback port, projections fed in-process."""
    del centre  # its tables exist first
    apply_migrations(database_url)
    app = http_app(database_url)
    runners = inprocess_runners(database_url)
    for runner in runners:
        runner.start()
    try:
        with served(app) as url:
            yield url
    finally:
        for runner in runners:
            runner.stop()
        app.state.callcentre.close()


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:  # ./dev test installs both
        pytest.fail("chromium and chromium-driver are not installed (./dev test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1920,1080", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    failed_before = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failed_before:  # the test's call failed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # e2e temp dirs are deleted after
        shot = ARTIFACTS / "wallboard-failure.png"
        driver.save_screenshot(str(shot))
        (ARTIFACTS / "wallboard-failure.html").write_text(driver.page_source)
        print(f"wallboard screenshot kept: {shot}")  # shown with the failure
    driver.quit()


def until(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(condition, message=what)


def text_of(driver: WebDriver, css: str) -> str:
    """The element's text, or "" when it is not there (or was just redrawn)."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def state_of(driver: WebDriver, agent: str) -> str:
    """The agent's state label (shown capitalised by the style sheet)."""
    return text_of(driver, f'#agents [data-agent="{agent}"] .state').lower()


def clicked(driver: WebDriver, css: str) -> bool:
    """Clicks the element if it is there now (the board redraws rows on each event)."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if found:
            found[0].click()
        return bool(found)
    except StaleElementReferenceException:
        return False


def test_a_supervisor_sees_a_call_wait_an_agent_take_it_and_monitors_it_from_a_click(
    site: str, browser: WebDriver, centre: CallCentreService, router: RoutingRunner,
    b2bua: StartWorker, phone: StartPhone, database_url: str,
) -> None:
    sam = phone("sam", "--answer-after", "0.2")
    add_user(database_url, "sam", Role.SUPERVISOR)
    admin = {"Authorization": f"Bearer {api_key(database_url, Role.ADMIN)}"}
    assert httpx2.put(f"{site}/v1/auth/users/sam/device", json={"device": sam.uri},
                     headers=admin).status_code == 204

    browser.get(f"{site}/wallboard")
    until(browser, lambda d: d.current_url.endswith("/login"), "sent to the login page")
    browser.find_element(By.ID, "username").send_keys("sam")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    until(browser, lambda d: text_of(d, "#connection") == "live", "the wallboard is live")

    provision_queue(centre, "sales", ["alice"], did="5000")
    until(browser, lambda d: state_of(d, "alice") == "logged out", "alice shown logged out")
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    call_id = Call.id_for(caller.wait("dialled")["sip_call_id"])
    until(browser, lambda d: text_of(d, '#queues [data-queue="sales"] .waiting') == "1",
          "the waiting call on the queue's row")

    alice = phone("alice", "--answer-after", "0.2")
    login(centre, "alice", alice)
    until(browser, lambda d: state_of(d, "alice") == "on call", "alice shown on the call")
    until(browser, lambda d: text_of(d, '#queues [data-queue="sales"] .waiting') == "0",
          "the queue empty again")

    monitor = f'#calls [data-call="{call_id}"] button[data-action="monitor"]'
    until(browser, lambda d: clicked(d, monitor), "Monitor clicked on the call's row")
    until(browser, lambda d: d.find_element(By.ID, "confirm").is_displayed(), "a confirmation")
    assert "Monitor the call" in text_of(browser, "#confirm-text")
    browser.find_element(By.ID, "confirm-yes").click()
    until(browser, lambda d: "accepted (202)" in text_of(d, "#notice"), "the monitor accepted")
    sam.wait("state", state="CONFIRMED")  # the supervisor's own phone rang and answered
    caller.send("hangup")
    until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f'[data-call="{call_id}"]'),
          "the call gone from the board")
