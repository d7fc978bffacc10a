"""The console index's dashboard (imageservice.dashboard): exact figures over a known data set,
links to the lists that show them, a fixed number of queries, operators only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from images.models import ImageLocation, StagedData
from images.storage import stores
from imageservice.audit.models import AuditEvent
from imageservice.dashboard import dashboard, top_projects
from tasks.models import Task

HOUR = timedelta(hours=1)


@pytest.fixture
def operator(admin) -> Client:
    client = Client()
    client.force_login(admin.user)
    return client


@pytest.fixture
def known_data(make_image, owner, outsider) -> str:
    return make_known_data(make_image, owner, outsider)


def make_known_data(make_image, owner, outsider) -> str:
    """Active images of two projects in the default store (its name is returned), old and new
    waiting ones, a stopped upload, a deleted image, and tasks running, stuck and failed
    (recently and long ago)."""
    store = stores.default_store().id
    now = timezone.now()

    def stored(size: int, project: str) -> None:
        image = make_image(status="active", size=size, owner=project)
        ImageLocation.objects.create(image=image, store=store, url=f"file:///{image.id}")

    for size in (100, 200, 300):
        stored(size, owner.project_id)
    stored(1000, outsider.project_id)
    for _ in range(2):
        make_image(status="queued", created_at=now - 2 * HOUR)
    make_image(status="queued")
    make_image(status="uploading", created_at=now - 2 * HOUR, updated_at=now - 2 * HOUR)
    staged = make_image(status="uploading", created_at=now - 2 * HOUR, updated_at=now - 2 * HOUR)
    StagedData.objects.create(
        image=staged, size=4096, checksum="c" * 32, os_hash_algo="sha512", os_hash_value="h"
    )
    make_image(status="deleted", deleted=True, size=10**9)

    def task(status: str, **fields) -> Task:
        return Task.objects.create(status=status, owner=owner.project_id, **fields)

    task("processing", heartbeat_at=now, updated_at=now)
    task("processing", heartbeat_at=now - HOUR, updated_at=now - HOUR)
    task("failure", updated_at=now - HOUR)
    task("failure", updated_at=now - 48 * HOUR)
    task("success", updated_at=now)
    return store


def counts(figures) -> dict[str, int]:
    return {figure.label: figure.count for figure in figures}


def test_dashboard_counts_images_by_status(known_data):
    board = dashboard()

    assert counts(board.statuses) == {
        "queued": 3,
        "saving": 0,
        "uploading": 2,
        "importing": 0,
        "active": 4,
        "deactivated": 0,
        "killed": 0,
        "pending_delete": 0,
    }
    assert board.statuses[0].url == "/admin/images/image/?status__exact=queued"


def test_dashboard_calls_out_old_queued_and_uploading_images(known_data):
    waiting = dashboard().waiting

    assert counts(waiting) == {"queued": 2, "uploading": 2}
    assert waiting[0].url == "/admin/images/image/?status__exact=queued&waiting=old"


def test_dashboard_waiting_age_follows_the_setting(known_data, settings):
    settings.DASHBOARD_WAITING_SECONDS = 3 * 3600

    assert counts(dashboard().waiting) == {"queued": 0, "uploading": 0}


def test_dashboard_sums_bytes_by_store_and_project(known_data, owner, outsider):
    board = dashboard()

    (store,) = [figure for figure in board.stores if figure.label == known_data]
    assert (store.count, store.bytes) == (4, 1600)
    assert store.url == f"/admin/images/image/?store={known_data}"
    assert store.free_bytes is not None and store.free_bytes > 0
    assert [(p.label, p.count, p.bytes) for p in board.projects] == [
        ("project-c", 1, 1000),
        ("project-a", 8, 600),
    ]
    assert board.projects[0].url == f"/admin/images/image/?owner={outsider.project_id}"


def test_dashboard_top_projects_are_limited(known_data):
    assert [figure.label for figure in top_projects(limit=1)] == ["project-c"]


def test_dashboard_counts_imports_running_failed_and_stuck(known_data):
    imports = dashboard().imports

    assert counts(imports) == {
        "running": 2,
        "failed in the last 24 h": 1,
        "stuck": 1,
        "uploads stopped": 1,
    }
    assert imports[0].url == "/admin/tasks/task/?status__in=pending%2Cprocessing"
    assert imports[2].url == "/admin/tasks/task/?stuck=yes"
    assert imports[3].url == "/admin/images/image/?waiting=stuck"


def test_dashboard_staging_figures_agree_with_the_staging_area(known_data, settings):
    root = settings.DATA_DIR / "staging"
    root.mkdir(exist_ok=True)
    (root / "not-an-image").write_bytes(b"x" * 10)
    gone = "0b0b0b0b-0000-4000-8000-000000000000"
    (root / gone).write_bytes(b"y" * 300)

    staging = dashboard().staging

    assert (staging.staged_images, staging.staged_bytes) == (1, 4096)
    assert (staging.entries, staging.entry_bytes) == (2, 310)
    assert (staging.orphans, staging.orphan_bytes) == (1, 300)
    assert staging.free_bytes is not None and staging.free_bytes > 0
    assert staging.url == "/admin/staging/"


def test_dashboard_lists_recent_audit_events_newest_first(db):
    now = timezone.now()
    for minutes in range(15):
        AuditEvent.objects.create(action=f"image.update.{minutes}", at=now - minutes * HOUR / 60)

    events = dashboard().events

    assert [event.action for event in events] == [f"image.update.{m}" for m in range(10)]


def test_dashboard_query_count_does_not_grow_with_the_data(
    known_data, make_image, owner, django_assert_num_queries
):
    with django_assert_num_queries(13):
        dashboard()
    for size in range(50):
        image = make_image(status="active", size=size)
        ImageLocation.objects.create(image=image, store=known_data, url=f"file:///{image.id}")
        Task.objects.create(status="failure", owner=owner.project_id)
        AuditEvent.objects.create(action="image.create", image_id=image.id)

    with django_assert_num_queries(13):
        dashboard()


def test_index_shows_the_dashboard_to_operators(
    operator, known_data, django_assert_max_num_queries
):
    with django_assert_max_num_queries(25):
        response = operator.get("/admin/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/admin/images/image/?status__exact=active" data-figure="status-active">4<' in html
    assert 'data-figure="imports-stuck">1<' in html


def test_index_and_its_figures_are_for_operators_only(owner, known_data):
    client = Client()
    client.force_login(owner.user)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_every_dashboard_link_lists_what_its_figure_counts(operator, known_data):
    board = dashboard()
    figures = [*board.statuses, *board.waiting, *board.stores, *board.projects, *board.imports]

    listed = {figure.url: operator.get(figure.url).context["cl"].result_count for figure in figures}

    assert listed == {figure.url: figure.count for figure in figures}
