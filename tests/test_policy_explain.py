"""The operator console's policy and staging pages, and the ``explain_policy`` command."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from images.models import StagedData
from imageservice.policy.engine import get_policy

POLICY_FILE = """\
get_image: "rule:context_is_admin"
watch_image: "role:member"
"""


def explain(*args: str) -> list[str]:
    out = StringIO()
    call_command("explain_policy", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


@pytest.fixture
def private_image(make_image):
    return make_image(name="private", visibility="private", status="active")


@pytest.fixture
def policy_file(settings, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_FILE)
    settings.POLICY_FILE = str(path)
    return path


# --- the command ----------------------------------------------------------------------------


def test_command_denies_a_member_of_another_project(member, private_image):
    lines = explain("--user", "member", "--action", "delete_image", "--image", private_image.id)

    assert lines[0] == f"DENIED: member for delete_image on image {private_image.id}"
    assert "rule: delete_image" in lines
    check = get_policy().rules["delete_image"][0]
    assert f"check string: {check}" in lines
    assert "source: default" in lines
    deciding = lines[lines.index("deciding checks:") + 1 :]
    assert "  role:admin" in deciding
    assert "  project_id:%(project_id)s" in deciding


def test_command_allows_the_operator_by_its_admin_role(admin, private_image):
    lines = explain("--user", "admin", "--action", "delete_image", "--image", private_image.id)

    assert lines[0].startswith("ALLOWED: admin for delete_image")
    assert lines[lines.index("deciding checks:") + 1 :] == ["  role:admin"]


def test_command_without_an_image_uses_the_users_project(owner):
    assert explain("--user", "owner", "--action", "get_images")[0] == (
        "ALLOWED: owner for get_images"
    )


def test_command_reports_file_and_override_sources(member, policy_file, private_image):
    overridden = explain("--user", "member", "--action", "get_image", "--image", private_image.id)
    added = explain("--user", "member", "--action", "watch_image")

    assert overridden[0].startswith("DENIED") and "source: override" in overridden
    assert added[0].startswith("ALLOWED") and "source: file" in added


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--user", "ghost", "--action", "get_image"), "Unknown user 'ghost'."),
        (("--user", "member", "--action", "no_such_rule"), "Unknown policy rule 'no_such_rule'."),
        (("--user", "member", "--action", "get_image", "--image", "nope"), "Unknown image 'nope'."),
    ],
)
def test_command_refuses_unknown_names(member, args, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        explain(*args)


def test_command_refuses_a_deleted_image(member, make_image):
    image = make_image(status="deleted", deleted=True)
    with pytest.raises(CommandError, match="Unknown image"):
        explain("--user", "member", "--action", "get_image", "--image", image.id)


# --- the policy page ------------------------------------------------------------------------


def test_policy_page_lists_every_rule_with_its_source(operator, policy_file):
    page = operator.get("/admin/policy/").content.decode()

    rules = get_policy().rules
    assert f"Effective rules ({len(rules)})" in page
    for name in rules:
        assert f"<td>{name}</td>" in page
    assert '<tr class="rule-override"><td>get_image</td>' in page
    assert '<tr class="rule-file"><td>watch_image</td>' in page
    assert '<tr class="rule-default"><td>delete_image</td>' in page


def test_explain_form_answers_for_a_member_and_the_operator(operator, member, private_image):
    ask = {"action": "delete_image", "image": private_image.id}

    denied = operator.get("/admin/policy/", {"user": "member", **ask}).content.decode()
    allowed = operator.get("/admin/policy/", {"user": "admin", **ask}).content.decode()

    assert "<h2>DENIED</h2>" in denied and "<code>project_id:%(project_id)s</code>" in denied
    assert "<h2>ALLOWED</h2>" in allowed and "<li><code>role:admin</code></li>" in allowed
    assert "<td>default</td>" in allowed


def test_explain_form_reports_an_unknown_user(operator):
    page = operator.get("/admin/policy/", {"user": "ghost", "action": "get_image"})

    assert "Unknown user &#x27;ghost&#x27;." in page.content.decode()
    assert page.context["explanation"] is None


@pytest.mark.parametrize("url", ["/admin/policy/", "/admin/staging/"])
def test_pages_refuse_non_operators(member, url):
    client = Client()
    client.force_login(member.user)

    assert client.get(url).status_code == 302
    assert client.get(url)["Location"].startswith("/admin/login/?next=")
    response = client.post("/admin/staging/cleanup/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- the staging page -----------------------------------------------------------------------


@pytest.fixture
def staging_dir(data_dir):
    root = data_dir / "staging"
    root.mkdir()
    return root


def test_staging_page_shows_files_bytes_and_orphans(operator, staging_dir, make_image):
    waiting = make_image(status="uploading")
    StagedData.objects.create(
        image=waiting, size=4, checksum="0" * 32, os_hash_algo="sha512", os_hash_value="0"
    )
    orphan = str(uuid.uuid4())
    (staging_dir / waiting.id).write_bytes(b"wait")
    (staging_dir / orphan).write_bytes(b"0123456789")
    work = staging_dir / f".work-{uuid.uuid4()}"
    work.mkdir()
    (work / "a").write_bytes(b"12")
    (work / "b").write_bytes(b"345")

    response = operator.get("/admin/staging/")
    page = response.content.decode()

    assert "4 file(s), 19\xa0bytes in 3 entries" in page
    assert "2 orphan(s), 15\xa0bytes" in page
    assert {entry.name: entry.orphan for entry in response.context["entries"]} == {
        orphan: True,
        waiting.id: False,
        work.name: True,
    }
    # The waiting entry links to its image, with the image's status.
    assert f'<a href="/admin/images/image/{waiting.id}/change/">{waiting.id}</a>' in page
    assert '<span class="badge badge-uploading">uploading</span>' in page
    assert f"Would remove {orphan} (10 bytes): image gone" in page
    assert (staging_dir / orphan).exists()  # looking removes nothing


def test_staging_cleanup_button_removes_orphans_only(operator, staging_dir, make_image):
    active = make_image(status="active")
    uploading = make_image(status="uploading")
    (staging_dir / active.id).write_bytes(b"12345")
    (staging_dir / uploading.id).write_bytes(b"in progress")

    confirmation = operator.get("/admin/staging/cleanup/").content.decode()
    assert "Remove these 1 staging entries (5\xa0bytes)?" in confirmation
    assert f"<td>{active.id}</td>" in confirmation and uploading.id not in confirmation
    assert (staging_dir / active.id).exists()  # asking removes nothing
    response = operator.post("/admin/staging/cleanup/", {"post": "yes"}, follow=True)
    page = response.content.decode()

    assert response.redirect_chain == [("/admin/staging/", 302)]
    assert not (staging_dir / active.id).exists()
    assert (staging_dir / uploading.id).exists()
    assert f"Removed {active.id} (5 bytes): image is active" in page
    assert "1 staging file(s) were removed, 5 bytes were freed" in page
    assert "0 orphan(s)" in page


def test_staging_page_without_a_staging_root(operator):
    page = operator.get("/admin/staging/").content.decode()

    assert "does not exist" in page and "0 file(s), 0\xa0bytes" in page


def test_console_index_links_to_the_policy_and_staging_pages(admin):
    client = Client()
    client.force_login(admin.user)

    page = client.get("/admin/").content.decode()

    assert 'href="/admin/policy/"' in page and 'href="/admin/staging/"' in page
