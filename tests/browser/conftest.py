"""A real browser: Debian's headless Chromium driven by selenium, against a real app server.

The app runs in the test's event loop (make_client gives it a port); every selenium call is blocking,
so it runs in a thread (`Browser.call`) while the loop keeps serving the page. Screenshots go to
$TEST_ARTIFACTS or ./test-artifacts/browser (git-ignored); the path is printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0


def _binaries() -> tuple[str, str] | str:
    """(chromium, chromedriver), or why the browser tests cannot run."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        return ("Chromium or chromedriver is missing: `apt-get install chromium chromium-driver` "
                "(./scripts/test does it when run as root)")
    return chromium, driver


class Browser:
    """One Chromium session; blocking WebDriver calls run in a thread."""

    def __init__(self, driver: Any, artifacts: Path) -> None:
        self.driver = driver
        self.artifacts = artifacts

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def get(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, script, *args)

    async def until(self, script: str, *args: Any, within: float = WAIT, what: str = "") -> Any:
        """Evaluate `script` (a JS expression body with `return`) until it is truthy; return its value."""
        deadline = asyncio.get_running_loop().time() + within
        value: Any = None
        while True:
            value = await self.js(script, *args)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                await self.screenshot("timeout")
                raise AssertionError(f"browser: still false after {within} s: {what or script} (last {value!r})")
            await asyncio.sleep(0.1)

    async def type_into(self, css: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        element = await self.call(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.call(element.clear)
        await self.call(element.send_keys, text)

    async def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        element = await self.call(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.call(element.click)

    async def size(self, width: int, height: int) -> None:
        await self.call(self.driver.set_window_size, width, height)

    async def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        await self.call(self.driver.save_screenshot, str(path))
        print(f"screenshot: {path}")
        return path

    async def console_errors(self) -> list[str]:
        """Severe console entries since the last call (CSP violations, failed loads, script errors)."""
        logs = await self.call(self.driver.get_log, "browser")
        return [entry["message"] for entry in logs if entry["level"] == "SEVERE"]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts") / "browser"
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser artifacts: {path}")
    return path


@pytest.fixture(scope="session")
def chromium_driver(artifacts: Path) -> Iterator[Any]:
    found = _binaries()
    if isinstance(found, str):
        pytest.skip(found)
    chromium, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,1400", "--hide-scrollbars", "--lang=en-US",
                     "--disable-extensions", "--no-first-run", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def browser(chromium_driver: Any, artifacts: Path) -> Browser:
    """The session's browser, back at a blank page and desktop size for each test."""
    page = Browser(chromium_driver, artifacts)
    await page.get("about:blank")
    await page.size(1440, 1400)
    await page.call(chromium_driver.get_log, "browser")       # drop what earlier tests left
    return page
