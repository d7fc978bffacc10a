"""Per-project limits set in the console and by ``manage.py project_limits``, taking effect in
the API; reservations of killed uploads released by ``recover_uploads``."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from imageservice import glance_conf
from imageservice.quotas.checks import check_default_limits, check_keystone_limits
from imageservice.quotas.models import DataReservation, ProjectLimits
from tests.support import JSON

LIMITS = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


def limits_form(project: str = "", **limits) -> dict[str, str]:
    form = {name: str(limits.get(name, "")) for name in LIMITS}
    return {"project": project, **form} if project else form


def created(persona) -> int:
    response = persona.client().post(
        "/v2/images", data=json.dumps({}), content_type="application/json", HTTP_ACCEPT=JSON
    )
    return response.status_code


# --- console ----------------------------------------------------------------------------------


def test_console_adds_limits_by_project_name_and_the_api_enforces_them(operator, owner, settings):
    response = operator.post(
        "/admin/quotas/projectlimits/add/", limits_form("project-a", image_count_total=0)
    )

    assert response.status_code == 302
    row = ProjectLimits.objects.get(project=owner.project_id)
    assert row.overrides() == {"image_count_total": 0}
    assert created(owner) == 413


def test_console_edit_changes_a_limit(operator, owner):
    ProjectLimits.objects.create(project=owner.project_id, image_count_total=0)

    response = operator.post(
        f"/admin/quotas/projectlimits/{owner.project_id}/change/",
        limits_form(image_count_total=-1, image_size_total=5),
    )

    assert response.status_code == 302
    row = ProjectLimits.objects.get(project=owner.project_id)
    assert row.overrides() == {"image_count_total": -1, "image_size_total": 5}
    assert created(owner) == 201
    page = operator.get(f"/admin/quotas/projectlimits/{owner.project_id}/change/")
    assert "<li>image_count_total: 1 of -1</li>" in page.content.decode()
    assert "<li>image_size_total: 0 of 5</li>" in page.content.decode()


def test_console_refuses_an_empty_row_and_limits_below_minus_one(operator, owner):
    empty = operator.post("/admin/quotas/projectlimits/add/", limits_form("project-a"))
    negative = operator.post(
        "/admin/quotas/projectlimits/add/", limits_form("project-a", image_size_total=-2)
    )

    assert empty.status_code == negative.status_code == 200
    assert empty.context["adminform"].form.non_field_errors() == [
        "Set at least one limit; delete this row to give the project the site's defaults."
    ]
    assert negative.context["adminform"].form.errors["image_size_total"] == [
        "-1 (unlimited) or more."
    ]
    assert not ProjectLimits.objects.exists()


def test_console_list_shows_own_limits_and_defaults(operator, owner, settings):
    settings.QUOTA_IMAGE_STAGE_TOTAL = 50
    ProjectLimits.objects.create(project=owner.project_id, image_size_total=-1)

    response = operator.get("/admin/quotas/projectlimits/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "project-a" in page
    assert "unlimited" in page
    assert "default (50)" in page


def test_console_delete_gives_the_project_the_defaults_again(operator, owner):
    ProjectLimits.objects.create(project=owner.project_id, image_count_total=0)

    response = operator.post(
        f"/admin/quotas/projectlimits/{owner.project_id}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not ProjectLimits.objects.exists()
    assert created(owner) == 201


# --- manage.py project_limits ----------------------------------------------------------------


def test_command_sets_limits_and_prints_them_with_usage(owner, make_image):
    make_image()
    out = StringIO()

    call_command(
        "project_limits",
        owner.project_id,
        "--image-count-total",
        "1",
        "--image-size-total",
        "unlimited",
        stdout=out,
    )

    assert ProjectLimits.objects.get(project=owner.project_id).overrides() == {
        "image_count_total": 1,
        "image_size_total": -1,
    }
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["image_size_total", "limit", "-1", "(project)", "usage", "0"]
    assert lines[2].split() == ["image_count_total", "limit", "1", "(project)", "usage", "1"]
    assert lines[-1] == (
        f"Project {owner.project_id}: set image_size_total=-1, image_count_total=1."
    )
    assert created(owner) == 413


def test_command_default_clears_one_limit_and_defaults_all(owner):
    ProjectLimits.objects.create(project=owner.project_id, image_count_total=0, image_size_total=9)

    call_command(
        "project_limits", owner.project_id, "--image-count-total", "default", stdout=StringIO()
    )
    assert ProjectLimits.objects.get(project=owner.project_id).overrides() == {
        "image_size_total": 9
    }

    call_command("project_limits", owner.project_id, "--defaults", stdout=StringIO())
    assert not ProjectLimits.objects.exists()


def test_command_without_options_changes_nothing(owner):
    out = StringIO()

    call_command("project_limits", owner.project_id, stdout=out)

    assert out.getvalue().splitlines()[-1] == f"Project {owner.project_id}: unchanged."
    assert not ProjectLimits.objects.exists()


@pytest.mark.parametrize("value", ["lots", "-2"])
def test_command_refuses_bad_limits(owner, value):
    with pytest.raises(CommandError):
        call_command("project_limits", owner.project_id, "--image-count-total", value)

    assert not ProjectLimits.objects.exists()


# --- reservations left by a killed upload ------------------------------------------------------


def test_recover_uploads_releases_a_killed_uploads_reservation(owner, make_image, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.UPLOAD_STALE_SECONDS + 60)
    image = make_image(status="saving", write_attempt="dead", updated_at=long_ago)
    DataReservation.objects.create(
        image=image, attempt="dead", owner=owner.project_id, area="store", size=10
    )
    running = make_image(status="saving", write_attempt="alive")
    kept = DataReservation.objects.create(
        image=running, attempt="alive", owner=owner.project_id, area="store", size=10
    )
    out = StringIO()

    call_command("recover_uploads", stdout=out)

    assert list(DataReservation.objects.all()) == [kept]
    assert "1 dead quota reservation(s) released." in out.getvalue()


# --- the site's defaults -------------------------------------------------------------------


def test_default_limit_below_minus_one_stops_the_start(settings):
    settings.QUOTA_IMAGE_COUNT_TOTAL = -5

    errors = check_default_limits()

    assert [error.id for error in errors] == ["imageservice.E070"]
    assert errors[0].msg == "QUOTA_IMAGE_COUNT_TOTAL must be -1 (unlimited) or more (got -5)."


def test_default_limits_unlimited_or_zero_pass(settings):
    settings.QUOTA_IMAGE_SIZE_TOTAL, settings.QUOTA_IMAGE_COUNT_TOTAL = -1, 0

    assert check_default_limits() == []


def test_keystone_limits_without_oslo_limit_options_stop_the_start(settings):
    settings.USE_KEYSTONE_LIMITS = True
    settings.OSLO_LIMIT = {"auth_url": "http://keystone.test:5000/v3"}

    errors = check_keystone_limits()

    assert [error.id for error in errors] == ["imageservice.E071"]
    assert errors[0].msg == "use_keystone_limits is on but [oslo_limit] lacks endpoint_id."


def test_oslo_limit_section_comes_from_the_glance_file_and_the_environment(tmp_path):
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[oslo_limit]\nauth_url = http://ks:5000/v3\nendpoint_id = e1\n")

    options = glance_conf.oslo_limit(glance_conf.load(str(conf)), {"OSLO_LIMIT_ENDPOINT_ID": "e2"})

    assert options == {"auth_url": "http://ks:5000/v3", "endpoint_id": "e2"}
