"""Browser tests of the operator console: Playwright's sync API driving Debian's chromium
against pytest-django's ``live_server``.

Chromium comes from the system (``/usr/bin/chromium``, apt package ``chromium``); Playwright's
own browser download is never used. `make test` installs both (chromium through
`make system-deps`); without them these tests fail, they never skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright import sync_api

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OPERATOR_PASSWORD = "operator-console-pw"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` as root (Debian: chromium)")
    # Playwright's sync API keeps an event loop running in this thread, which Django's
    # async-safety check takes for async code; the ORM calls here are plain synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def console(page, admin):
    """A page logged in to the console as the ``admin`` persona (the operator)."""
    admin.user.set_password(OPERATOR_PASSWORD)
    admin.user.save()
    login(page, admin.user.username, OPERATOR_PASSWORD)
    assert page.url.rstrip("/").endswith("/admin"), page.url
    return page
