"""A real browser (Debian's chromium, headless, driven by Selenium through Debian's
chromedriver) on the two pages an operator opens: rq-dashboard behind its login, showing the
queue, a worker and a finished and a failed job; and the API's /docs and /redoc, rendered
with every request on 127.0.0.1 (no CDN). Screenshots go under TEST_OUTPUT_DIR (default:
test-output/ at the project root)."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from ingestion_queue import rq_job_id
from tests.fixture_site.server import FixtureSite
from tests.utils.dashboard import DashboardProcess
from tests.utils.jobs import submit, wait_job
from tests.utils.services import QUEUE_NAME, ROOT, free_port, wait_for

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FICTION_DONE = "/fiction/1002/fixture-fiction-1002"
FICTION_MISSING = "/fiction/9999/unknown"  # the fixture site answers 404: the job ends ERROR
USER = "operator"
WAIT = 30  # seconds a page may take to render (it is JS-rendered)

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium"
    " chromium-driver; .ci/run installs them)",
)


def output_dir() -> Path:
    directory = Path(os.environ.get("TEST_OUTPUT_DIR") or ROOT / "test-output")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        # no name resolves: a page that asked a CDN would get nothing, and show it
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # a Service with the driver's path: Selenium Manager never looks for one online
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    path = output_dir() / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path


def shown(
    driver: webdriver.Chrome,
    selector: str,
    text: str = "",
    *,
    read: Callable[[WebElement], str] = lambda element: element.text,
) -> list[str]:
    """What `read` finds in the elements matching `selector` whose text holds `text`, once
    the page shows any (rq-dashboard redraws its tables as it polls: read them at once)."""

    def found(_: Any) -> list[str]:
        matches = driver.find_elements(By.CSS_SELECTOR, selector)
        return [read(element) for element in matches if text in element.text]

    wait = WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(found, f"no {selector} with {text!r}")


def log_in(driver: webdriver.Chrome, username: str, password: str) -> None:
    """HTTP basic auth on every request the page makes, its scripts' included."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )


LOCAL_SCHEMES = ("data", "blob", "chrome")


@dataclass
class Traffic:
    """What the browser asked for and got since the last look (Chrome's performance log)."""

    urls: dict[str, str] = field(default_factory=dict)  # request id: URL
    statuses: dict[str, int] = field(default_factory=dict)  # URL: HTTP status
    blocked: dict[str, str] = field(default_factory=dict)  # request id: why it never left

    def off(self, origin: str) -> dict[str, str]:
        """Requests (id: URL) to anywhere but `origin`: data: and blob: URLs and the
        browser's own resources (chrome:, e.g. a search field's clear icon) never leave it."""
        return {
            request: url
            for request, url in self.urls.items()
            if urlsplit(url).scheme not in LOCAL_SCHEMES and _origin(url) != origin
        }


def traffic(driver: webdriver.Chrome) -> Traffic:
    seen = Traffic()
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        params = event["params"]
        if event["method"] == "Network.requestWillBeSent":
            seen.urls[params["requestId"]] = params["request"]["url"]
        elif event["method"] == "Network.responseReceived":
            seen.statuses[params["response"]["url"]] = params["response"]["status"]
        elif event["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            seen.blocked[params["requestId"]] = params["blockedReason"]
    return seen


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def policy_violations(driver: webdriver.Chrome) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def test_the_dashboard_shows_the_queue_a_worker_and_a_finished_and_a_failed_job(
    api: TestClient,
    fixture_site: FixtureSite,
    start_worker: Any,
    tmp_path: Path,
    browser: webdriver.Chrome,
) -> None:
    worker = start_worker()
    done = submit(api, fixture_site.url(FICTION_DONE))
    failed = submit(api, fixture_site.url(FICTION_MISSING))
    assert wait_job(api, done)["status"] == "done", worker.log()
    assert wait_job(api, failed)["status"] == "error", worker.log()
    password = f"pw-{uuid.uuid4().hex}"
    login = {"DASHBOARD_USERNAME": USER, "DASHBOARD_PASSWORD": password}
    dashboard = DashboardProcess(tmp_path, env=login).wait_ready()
    try:
        browser.get(dashboard.url + "/")
        assert traffic(browser).statuses[dashboard.url + "/"] == 401  # no login yet: nothing shown
        log_in(browser, USER, password)
        browser.get(dashboard.url + "/")
        queue = shown(browser, "tr[data-role=queue]", QUEUE_NAME)[0]
        screenshot(browser, "dashboard-queues")

        browser.get(dashboard.url + "/0/view/workers")
        assert shown(browser, "tr[data-role=worker]", worker.name)
        screenshot(browser, "dashboard-workers")

        jobs = f"{dashboard.url}/0/view/jobs/{QUEUE_NAME}"
        browser.get(f"{jobs}/finished/20/asc/1")
        assert shown(browser, f"tr[data-role=job][data-job-id='{rq_job_id(done)}']")
        screenshot(browser, "dashboard-finished")

        browser.get(f"{jobs}/failed/20/asc/1")
        failure = shown(browser, f"tr[data-role=job][data-job-id='{rq_job_id(failed)}']")[0]
        screenshot(browser, "dashboard-failed")
    finally:
        dashboard.stop()
    assert "404" in failure, failure  # the job's error, as rq-dashboard shows it
    # Queue, Queued, Deferred, Scheduled, Started, Finished, Failed, Canceled
    counts = queue.split()
    assert counts[0] == QUEUE_NAME and counts[5:7] == ["1", "1"], counts


@pytest.fixture
def api_server(pg_db: str) -> Iterator[str]:
    """The API served by uvicorn (in a thread) on a free loopback port."""
    from main import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_docs_and_redoc_render_with_every_request_on_this_host(
    api_server: str, browser: webdriver.Chrome
) -> None:
    operations = httpx.get(api_server + "/openapi.json").json()["paths"]
    traffic(browser)  # the browser's own start page: not the docs'
    browser.get(api_server + "/docs")
    paths = set(shown(browser, ".opblock-summary-path", read=_data_path))
    screenshot(browser, "docs-swagger-ui")
    assert paths == set(operations)

    browser.get(api_server + "/redoc")
    sections = shown(browser, "[data-section-id^='operation/']")
    screenshot(browser, "docs-redoc")
    assert len(sections) >= len(operations)

    seen = traffic(browser)
    names = {urlsplit(url).path.rsplit("/", 1)[-1] for url in seen.urls.values()}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"} <= names, seen
    # ReDoc's sidebar asks cdn.redoc.ly for Redocly's logo (it hides the image when that
    # fails): the page's policy stops it in the browser, so nothing leaves this host
    elsewhere = seen.off(api_server)
    print(f"asked of other hosts, blocked by the page's policy: {sorted(elsewhere.values())}")
    assert all(seen.blocked.get(request) == "csp" for request in elsewhere), (elsewhere, seen)
    violations = policy_violations(browser)
    assert all(any(url in v for url in elsewhere.values()) for v in violations), violations


def _data_path(element: WebElement) -> str:
    return element.get_attribute("data-path") or ""
