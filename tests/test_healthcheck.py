"""``GET /healthcheck``: what a load balancer probes, answered as Glance's oslo.middleware
healthcheck does (the database-down case runs against a live server in tests/nodes)."""

from __future__ import annotations

from django.test import Client


def test_healthcheck_answers_ok_without_a_token(db):
    response = Client().get("/healthcheck")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.content == b"OK"


def test_healthcheck_head_answers_204_without_a_body(db):
    response = Client().head("/healthcheck")

    assert response.status_code == 204
    assert response.content == b""


def test_healthcheck_is_503_while_the_disable_file_exists(db, settings, tmp_path):
    disable = tmp_path / "healthcheck_disable"
    settings.HEALTHCHECK_DISABLE_BY_FILE_PATH = str(disable)
    assert Client().get("/healthcheck").status_code == 200

    disable.touch()
    disabled = Client().get("/healthcheck")
    disable.unlink()
    enabled = Client().get("/healthcheck")

    assert (disabled.status_code, disabled.content) == (503, b"DISABLED BY FILE")
    assert disabled["Content-Type"] == "text/plain; charset=UTF-8"
    assert (enabled.status_code, enabled.content) == (200, b"OK")


def test_healthcheck_head_is_503_while_disabled(db, settings, tmp_path):
    disable = tmp_path / "healthcheck_disable"
    disable.touch()
    settings.HEALTHCHECK_DISABLE_BY_FILE_PATH = str(disable)

    assert Client().head("/healthcheck").status_code == 503
