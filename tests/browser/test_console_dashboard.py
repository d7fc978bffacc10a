"""The dashboard of the console index in a real browser: the figures of a known data set, and
each figure's link opening the filtered list with that many rows."""

from __future__ import annotations

import pytest

from imageservice.audit.models import AuditEvent
from tests.test_dashboard import make_known_data


@pytest.fixture
def known_data(make_image, owner, outsider) -> str:
    return make_known_data(make_image, owner, outsider)


def figure(page, name: str) -> int:
    return int(page.inner_text(f"[data-figure='{name}']"))


def rows_after_clicking(page, name: str) -> int:
    page.goto("/admin/")
    page.click(f"[data-figure='{name}']")
    page.wait_for_load_state()
    return page.locator("#result_list tbody tr").count()


def test_dashboard_shows_the_figures_of_the_known_data(console, known_data, tmp_path):
    console.goto("/admin/")
    console.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    assert figure(console, "status-active") == 4
    assert figure(console, "status-queued") == 3
    assert figure(console, "status-uploading") == 2
    assert figure(console, "waiting-queued") == 2
    assert figure(console, "waiting-uploading") == 2
    assert figure(console, f"store-{known_data}") == 4
    assert figure(console, "project-project-c") == 1
    assert figure(console, "project-project-a") == 8
    assert figure(console, "imports-running") == 2
    assert figure(console, "imports-failed-in-the-last-24-h") == 1
    assert figure(console, "imports-stuck") == 1
    assert figure(console, "imports-uploads-stopped") == 1
    assert console.inner_text("[data-figure='staging-staged']") == "4.0\xa0KB"
    assert console.locator("#dashboard-stores").get_by_text("1.6\xa0KB").count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "status-active",
        "status-queued",
        "waiting-queued",
        "waiting-uploading",
        "store-file",
        "project-project-a",
        "imports-running",
        "imports-failed-in-the-last-24-h",
        "imports-stuck",
        "imports-uploads-stopped",
    ],
)
def test_dashboard_figure_opens_the_list_it_counts(console, known_data, name):
    console.goto("/admin/")
    counted = figure(console, name)

    assert counted > 0
    assert rows_after_clicking(console, name) == counted


def test_dashboard_recent_event_links_to_the_event(console, make_image):
    image = make_image(name="audited")
    event = AuditEvent.objects.create(action="image.update", image_id=image.id, user_id="u1")

    console.goto("/admin/")
    console.locator("#dashboard-events").get_by_text("image.update").wait_for()
    console.click(f"#dashboard-events a[href='/admin/audit/auditevent/{event.pk}/change/']")
    console.wait_for_load_state()

    assert f"/admin/audit/auditevent/{event.pk}/change/" in console.url
