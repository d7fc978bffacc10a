"""The ``glance`` command line, unchanged, in a subprocess against the live server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

# The console script installed beside the interpreter running the tests (.venv/bin/glance).
GLANCE = Path(sys.executable).parent / "glance"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def terminal_stdin():
    """A terminal for the CLI's stdin. ``image-create`` treats any stdin that is not a tty
    (including /dev/null) as image data and uploads it, and uploads are not implemented yet."""
    leader, follower = pty.openpty()
    yield follower
    os.close(follower)
    os.close(leader)


@pytest.fixture
def glance(live_service, terminal_stdin):
    def run(account, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(GLANCE),
                "--os-image-url",
                live_service.url,
                "--os-auth-token",
                account.token,
                *args,
            ],
            env=live_service.env,
            stdin=terminal_stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def table_rows(output: str) -> list[list[str]]:
    """The cells of a prettytable, header row first."""
    return [
        [cell.strip() for cell in line.strip()[1:-1].split("|")]
        for line in output.splitlines()
        if line.startswith("|")
    ]


def property_table(output: str) -> dict[str, str]:
    return dict(table_rows(output)[1:])


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def create_image(glance, account, name: str, *args: str) -> dict[str, str]:
    return property_table(succeeded(glance(account, "image-create", "--name", name, *args)))


def test_image_create_prints_the_image_with_custom_properties(glance, live_service, unique):
    mark = live_service.access_log_mark()

    image = create_image(
        glance,
        live_service.user,
        f"cli-create-{unique}",
        "--disk-format", "qcow2",
        "--container-format", "bare",
        "--property", "build_id=42",
        "--property", "purpose=ci",
    )  # fmt: skip

    assert image["name"] == f"cli-create-{unique}"
    assert (image["build_id"], image["purpose"]) == ("42", "ci")
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert (image["status"], image["visibility"]) == ("queued", "shared")
    assert image["owner"] == live_service.user.project_id
    shown = property_table(succeeded(glance(live_service.user, "image-show", image["id"])))
    assert (shown["name"], shown["build_id"], shown["purpose"]) == (
        f"cli-create-{unique}",
        "42",
        "ci",
    )
    # The image-show request comes after create has exited, so its line follows any upload's.
    requests = live_service.requests_since(
        mark, path_prefix=f"/v2/images/{image['id']}", at_least=1
    )
    assert [path for _, path, _ in requests if path.endswith("/file")] == []


def test_image_list_pages_through_every_image_once_in_name_order(glance, live_service, unique):
    names = [f"cli-page-{unique}-{n}" for n in (3, 0, 4, 1, 2)]
    ids = {
        name: create_image(glance, live_service.user, name, "--tags", unique)["id"]
        for name in names
    }
    mark = live_service.access_log_mark()

    listing = [
        "image-list", "--page-size", "2", "--tag", unique, "--sort-key", "name", "--sort-dir", "asc",
    ]  # fmt: skip
    output = succeeded(glance(live_service.user, *listing))

    rows = table_rows(output)
    assert rows[0] == ["ID", "Name"]
    assert rows[1:] == [[ids[name], name] for name in sorted(names)]
    pages = live_service.requests_since(mark, path_prefix="/v2/images?", at_least=3)
    assert len(pages) == 3
    assert all(method == "GET" and "limit=2" in path for method, path, _ in pages)


def test_image_show_unknown_id_exits_non_zero_with_not_found(glance, live_service):
    result = glance(live_service.user, "image-show", UNKNOWN_ID)

    assert result.returncode != 0
    assert f"HTTP 404 Not Found: No image found with ID {UNKNOWN_ID}" in result.stderr


def test_image_update_renames_and_adds_changes_removes_properties(glance, live_service, unique):
    image = create_image(
        glance,
        live_service.user,
        f"cli-update-{unique}",
        "--property", "stage=beta",
        "--property", "keep=yes",
        "--property", "gone=soon",
    )  # fmt: skip

    update = [
        "image-update", "--name", f"cli-renamed-{unique}",
        "--property", "stage=ga", "--property", "added=new", "--remove-property", "gone",
        image["id"],
    ]  # fmt: skip
    updated = property_table(succeeded(glance(live_service.user, *update)))

    shown = property_table(succeeded(glance(live_service.user, "image-show", image["id"])))
    for body in (updated, shown):
        assert body["name"] == f"cli-renamed-{unique}"
        assert (body["stage"], body["added"], body["keep"]) == ("ga", "new", "yes")
        assert "gone" not in body


def test_image_tag_update_and_delete(glance, live_service, unique):
    image = create_image(glance, live_service.user, f"cli-tags-{unique}")

    succeeded(glance(live_service.user, "image-tag-update", image["id"], "red"))
    added = table_rows(
        succeeded(glance(live_service.user, "image-tag-update", image["id"], "blue"))
    )
    succeeded(glance(live_service.user, "image-tag-delete", image["id"], "red"))

    assert added[1][0] == image["id"]
    assert sorted(json.loads(added[1][1].replace("'", '"'))) == ["blue", "red"]
    shown = property_table(succeeded(glance(live_service.user, "image-show", image["id"])))
    assert json.loads(shown["tags"]) == ["blue"]


def test_member_create_accept_and_list(glance, live_service, unique):
    user, other = live_service.user, live_service.other
    image = create_image(glance, user, f"cli-share-{unique}", "--visibility", "shared")
    before = glance(other, "image-show", image["id"])

    created = table_rows(succeeded(glance(user, "member-create", image["id"], other.project_id)))
    accepted = table_rows(
        succeeded(glance(other, "member-update", image["id"], other.project_id, "accepted"))
    )

    assert before.returncode != 0
    assert "404 Not Found" in before.stderr
    assert created == [
        ["Image ID", "Member ID", "Status"],
        [image["id"], other.project_id, "pending"],
    ]
    assert accepted[1] == [image["id"], other.project_id, "accepted"]
    members = table_rows(succeeded(glance(user, "member-list", "--image-id", image["id"])))
    assert members[1:] == [[image["id"], other.project_id, "accepted"]]
    listed = table_rows(succeeded(glance(other, "image-list")))
    assert [image["id"], f"cli-share-{unique}"] in listed[1:]


def test_image_deactivate_and_reactivate(glance, live_service, unique):
    image = create_image(glance, live_service.user, f"cli-deactivate-{unique}")
    # Nothing can upload data yet, so the image is made active in the database.
    live_service.set_status(image["id"], "active")

    succeeded(glance(live_service.user, "image-deactivate", image["id"]))
    deactivated = property_table(succeeded(glance(live_service.user, "image-show", image["id"])))
    succeeded(glance(live_service.user, "image-reactivate", image["id"]))
    reactivated = property_table(succeeded(glance(live_service.user, "image-show", image["id"])))

    assert deactivated["status"] == "deactivated"
    assert reactivated["status"] == "active"


def test_image_delete_then_show_exits_with_not_found(glance, live_service, unique):
    image = create_image(glance, live_service.user, f"cli-delete-{unique}")

    deleted = glance(live_service.user, "image-delete", image["id"])
    shown = glance(live_service.user, "image-show", image["id"])

    assert deleted.returncode == 0, deleted.stderr
    assert shown.returncode != 0
    assert f"HTTP 404 Not Found: No image found with ID {image['id']}" in shown.stderr


def test_image_delete_of_unknown_id_reports_no_such_image(glance, live_service):
    result = glance(live_service.user, "image-delete", UNKNOWN_ID)

    assert result.returncode != 0
    assert f"No image with an ID of '{UNKNOWN_ID}' exists." in result.stderr


def test_member_cannot_delete_the_owners_shared_image(glance, live_service, unique):
    user, other = live_service.user, live_service.other
    image = create_image(glance, user, f"cli-nodelete-{unique}", "--visibility", "shared")
    succeeded(glance(user, "member-create", image["id"], other.project_id))
    succeeded(glance(other, "member-update", image["id"], other.project_id, "accepted"))

    result = glance(other, "image-delete", image["id"])

    assert result.returncode != 0
    assert f"You are not permitted to delete the image '{image['id']}'." in result.stderr
    shown = property_table(succeeded(glance(user, "image-show", image["id"])))
    assert shown["status"] == "queued"
