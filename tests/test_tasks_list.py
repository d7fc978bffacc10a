"""GET /v2/tasks: sorting, filters, limit and keyset marker paging with `first` and `next`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from imageservice.policy.engine import reset_policy
from tasks.models import Task
from tests.support import JSON, error_message

START = timezone.now() - timedelta(hours=1)


def make_tasks(count: int, owner: str = "project-a", **fields) -> list[Task]:
    """Tasks created a minute apart, oldest first."""
    return [
        Task.objects.create(owner=owner, created_at=START + timedelta(minutes=n), **fields)
        for n in range(count)
    ]


def listed(persona, query: str = ""):
    return persona.client().get(f"/v2/tasks{query}", HTTP_ACCEPT=JSON)


def ids(response) -> list[str]:
    return [task["id"] for task in response.json()["tasks"]]


def test_tasks_are_listed_newest_first_by_default(admin):
    tasks = make_tasks(3)

    response = listed(admin)

    assert response.status_code == 200
    assert ids(response) == [task.id for task in reversed(tasks)]
    assert response.json()["first"] == "/v2/tasks"
    assert response.json()["schema"] == "/v2/schemas/tasks"
    assert "next" not in response.json()


def test_marker_pages_through_every_task_once(admin):
    tasks = make_tasks(5)

    first = listed(admin, "?limit=2&sort_dir=asc")
    second = admin.client().get(first.json()["next"], HTTP_ACCEPT=JSON)
    last = admin.client().get(second.json()["next"], HTTP_ACCEPT=JSON)

    assert first.json()["next"] == f"/v2/tasks?limit=2&sort_dir=asc&marker={tasks[1].id}"
    assert second.json()["first"] == "/v2/tasks?limit=2&sort_dir=asc"
    assert ids(first) + ids(second) + ids(last) == [task.id for task in tasks]
    assert "next" not in last.json()


def test_sort_key_and_status_filter(admin):
    done = make_tasks(2, status="success")
    make_tasks(1, status="failure")

    response = listed(admin, "?status=success&sort_key=updated_at&sort_dir=asc")

    assert ids(response) == [task.id for task in done]


def test_marker_filtered_out_since_the_last_page_still_anchors_the_next(admin):
    tasks = make_tasks(3)
    Task.objects.filter(pk=tasks[1].pk).update(deleted=True)

    response = listed(admin, f"?marker={tasks[1].id}")

    assert ids(response) == [tasks[0].id]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?limit=ten", "limit param must be an integer"),
        ("?limit=-1", "limit param must be positive"),
        ("?sort_key=name", "Invalid sort key: name."),
        ("?sort_dir=up", "Invalid sort direction: up"),
        ("?status=done", "Invalid status value: done"),
        ("?marker=not-a-uuid", "Invalid marker format"),
        (
            "?marker=6b8c1c7e-2f7a-4d54-9a1e-000000000000",
            "Invalid marker. Task 6b8c1c7e-2f7a-4d54-9a1e-000000000000 could not be found.",
        ),
    ],
)
def test_invalid_parameters_are_400(admin, query, message):
    response = listed(admin, query)

    assert response.status_code == 400
    assert error_message(response) == message


@pytest.fixture
def open_tasks_api(settings, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('tasks_api_access: "role:member"\n')
    settings.POLICY_FILE = str(policy)
    reset_policy()
    yield
    settings.POLICY_FILE = ""
    reset_policy()


def test_another_projects_task_is_no_marker(open_tasks_api, owner, outsider):
    [own] = make_tasks(1, owner=owner.project_id)
    [foreign] = make_tasks(1, owner=outsider.project_id)

    assert ids(listed(owner)) == [own.id]
    response = listed(owner, f"?marker={foreign.id}")

    assert response.status_code == 400
    assert error_message(response) == f"Invalid marker. Task {foreign.id} could not be found."


@pytest.mark.parametrize("count", [3, 30])
def test_task_list_query_count_does_not_grow_with_tasks(admin, count, django_assert_num_queries):
    tasks = make_tasks(count)
    marker = tasks[-1].id
    admin.client().get("/v2/tasks")  # the token is validated once, then cached

    # the marker row, the page
    with django_assert_num_queries(2) as captured:
        response = listed(admin, f"?limit=2&marker={marker}")

    assert ids(response) == [tasks[-2].id, tasks[-3].id]
    # No query reads every task to find the marker's place.
    assert all(" LIMIT " in query["sql"] for query in captured.captured_queries)
