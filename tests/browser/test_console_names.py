"""Names instead of UUIDs, and pages that read at a glance: the owner chooser refuses a typo,
tasks show their image, project, user and method, lists fit one line a row at 1280 px, and
"View site" leads somewhere useful."""

from __future__ import annotations

import uuid

from images.models import Image
from tasks.models import Task
from tests.browser.test_operator_console import Api, success_messages


def test_owner_chooser_refuses_an_unknown_project_and_takes_a_name(
    console, make_image, member, tmp_path
):
    image = make_image(name="moved", disk_format="raw", container_format="bare")
    original_owner = image.owner
    console.goto(f"/admin/images/image/{image.id}/change/")
    assert console.inner_text(".field-owner .project-name") == "project-a"

    typo = str(uuid.uuid4())
    console.fill("#id_owner", typo)
    console.click("input[name=_save]")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "owner-typo.png", full_page=True)

    assert console.inner_text(".field-owner .errorlist") == (
        f"No project has the ID or name '{typo}'. Choose one of the listed projects; "
        "nothing was saved."
    )
    assert success_messages(console) == []
    assert Image.objects.get(pk=image.pk).owner == original_owner

    console.fill("#id_owner", "project-b")
    console.click("input[name=_save]")
    console.wait_for_load_state()

    assert any("was changed successfully" in text for text in success_messages(console))
    assert Image.objects.get(pk=image.pk).owner == member.project_id


def test_failed_task_reads_as_names_with_a_badge_and_no_running_bar(
    console, live_server, owner, tmp_path
):
    api = Api(live_server, owner)
    image = api.create_image(name="broken-import", disk_format="qcow2")
    assert api.stage(image["id"]).status_code == 204
    assert api.glance_direct(image["id"]).status_code == 202
    failed = Task.objects.get(image_id=image["id"])

    console.goto(f"/admin/images/image/{image['id']}/change/")
    console.click("#image-tasks")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "tasks.png", full_page=True)

    row = console.locator(f"#result_list tr:has(input[value='{failed.id}'])")
    assert console.locator("#result_list tbody tr").count() == 1
    assert row.locator(".field-method").inner_text() == "glance-direct"
    assert row.locator(".field-status_display .badge-failure").inner_text() == "failure"
    assert row.locator("progress").count() == 0
    assert row.locator(".field-image_link").inner_text() == "broken-import"
    assert row.locator(".field-owner_display").inner_text() == f"project-a ({owner.project_id})"
    assert row.locator(".field-user_display").inner_text() == (f"owner ({owner.user.keystone_id})")

    row.locator(".field-short_id a").click()
    console.wait_for_load_state()
    inputs = dict(
        line.split("\t", 1) for line in console.locator("table.task-input tr").all_inner_texts()
    )
    assert inputs["import_req.method.name"] == "glance-direct"
    assert inputs["roles"] == "member, reader"
    assert console.locator("#task-retry").count() == 1


def test_image_list_rows_stay_on_one_line_at_1280_px(console, make_image, tmp_path):
    for number in range(5):
        make_image(
            name=f"ubuntu-24.04-server-cloudimg-amd64-{number}",
            status="active",
            size=2 * 1024**3,
            disk_format="qcow2",
            container_format="bare",
            tags=("lts", "server", "golden"),
            protected=number == 0,
        )
    console.set_viewport_size({"width": 1280, "height": 900})

    console.goto("/admin/images/image/")
    console.screenshot(path=tmp_path / "image-list-1280.png", full_page=True)

    # The height each cell's text takes, in lines: over 1.5 means it wrapped.
    lines = console.evaluate(
        """() => [...document.querySelectorAll('#result_list tbody td, #result_list tbody th')]
          .map((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const rects = [...range.getClientRects()].filter((rect) => rect.height > 0);
            const top = Math.min(...rects.map((rect) => rect.top));
            const bottom = Math.max(...rects.map((rect) => rect.bottom));
            return rects.length ? (bottom - top) / parseFloat(getComputedStyle(cell).lineHeight)
                                : 0;
          })"""
    )
    assert len(lines) == 5 * 10
    assert console.locator("#result_list .image-protected").count() == 1
    assert max(lines) < 1.5, lines
    # Nothing hidden behind a horizontal scroll bar either.
    overflow = console.evaluate(
        "(() => { const box = document.querySelector('#changelist .results');"
        " return box.scrollWidth - box.clientWidth; })()"
    )
    assert overflow <= 0, overflow


def test_view_site_opens_the_service_page(console):
    console.goto("/admin/")
    console.click("#user-tools a:has-text('View site')")
    console.wait_for_load_state()

    assert console.url.endswith("/admin/about/")
    assert "/v2/" in console.inner_text("#service-facts")
    assert "docs/operator.md" in console.inner_text("#service-docs")
