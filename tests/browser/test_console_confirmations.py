"""Every destructive console action asks first, on a page listing what it applies to (names,
sizes, the protected ones it will refuse), as Django's own delete confirmation, then says what
it did."""

from __future__ import annotations

from images.models import Image
from tests.browser.test_operator_console import success_messages


def run_action(page, action: str, *image_ids: str) -> None:
    page.goto("/admin/images/image/")
    for image_id in image_ids:
        page.check(f"input[name=_selected_action][value='{image_id}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()


def listed(page) -> list[str]:
    return page.locator("#confirm-objects tbody tr").all_inner_texts()


def error_messages(page) -> list[str]:
    return page.locator("ul.messagelist li.error").all_inner_texts()


def test_delete_lists_names_sizes_and_protected_images_then_deletes_the_others(
    console, make_image, tmp_path
):
    plain = make_image(name="plain", status="active", size=5 * 1024**2)
    kept = make_image(name="kept", status="active", size=2048, protected=True)

    run_action(console, "delete_images", plain.id, kept.id)
    console.screenshot(path=tmp_path / "delete-confirmation.png", full_page=True)

    assert sorted(listed(console)) == sorted(
        [
            f"{plain.id}\tplain\tactive\tproject-a\t5.0\xa0MB\tno\tdone",
            f"{kept.id}\tkept\tactive\tproject-a\t2.0\xa0KB\tyes\trefused: protected",
        ]
    )
    assert "1 of 2 will be refused" in console.inner_text("#confirm-refused")
    assert not Image.objects.filter(deleted=True).exists()  # asking deletes nothing

    console.click("#confirm-no")
    console.wait_for_load_state()
    assert "/admin/images/image/" in console.url
    assert not Image.objects.filter(deleted=True).exists()

    run_action(console, "delete_images", plain.id, kept.id)
    console.click("#confirm-yes")
    console.wait_for_load_state()

    assert success_messages(console) == ["1 image deleted."]
    assert error_messages(console) == [
        f"Image {kept.id}: Image {kept.id} is protected and cannot be deleted."
    ]
    assert Image.objects.get(pk=plain.pk).deleted is True
    assert Image.objects.get(pk=kept.pk).deleted is False


def test_deactivate_and_reactivate_ask_first_and_say_what_they_did(console, make_image):
    active = make_image(name="served", status="active", size=10)
    queued = make_image(name="empty")

    run_action(console, "deactivate", active.id, queued.id)
    assert sorted(listed(console)) == sorted(
        [
            f"{active.id}\tserved\tactive\tproject-a\t10\xa0bytes\tno\tdone",
            f"{queued.id}\tempty\tqueued\tproject-a\t—\tno\trefused: status is queued",
        ]
    )
    assert Image.objects.get(pk=active.pk).status == "active"
    console.click("#confirm-yes")
    console.wait_for_load_state()

    assert success_messages(console) == ["1 image deactivated."]
    assert error_messages(console) == [
        f"Image {queued.id}: Not allowed to deactivate image in status 'queued'"
    ]
    assert Image.objects.get(pk=active.pk).status == "deactivated"

    run_action(console, "reactivate", active.id)
    assert "Reactivate 1 image" in console.inner_text("h1")
    console.click("#confirm-yes")
    console.wait_for_load_state()

    assert success_messages(console) == ["1 image reactivated."]
    assert Image.objects.get(pk=active.pk).status == "active"


def test_staging_cleanup_lists_the_orphans_before_removing_them(
    console, make_image, data_dir, tmp_path
):
    staging = data_dir / "staging"
    staging.mkdir()
    done = make_image(name="done", status="active")
    waiting = make_image(name="waiting", status="uploading")
    (staging / done.id).write_bytes(b"x" * 3000)
    (staging / waiting.id).write_bytes(b"in progress")

    console.goto("/admin/staging/")
    console.click("#staging-cleanup")
    console.wait_for_load_state()
    console.screenshot(path=tmp_path / "cleanup-confirmation.png", full_page=True)

    assert listed(console) == [f"{done.id}\tdone\tactive\t2.9\xa0KB\tdone"]
    assert (staging / done.id).exists()
    console.click("#confirm-yes")
    console.wait_for_load_state()

    assert "/admin/staging/" in console.url
    assert not (staging / done.id).exists()
    assert (staging / waiting.id).exists()
    assert any("1 staging file(s) were removed" in text for text in success_messages(console))
