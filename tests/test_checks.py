"""Bad configuration stops the service at start with a stable id and a hint."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from imageservice.checks import check_settings
from imageservice.policy.checks import check_policy


def ids(errors) -> list[str]:
    return [error.id for error in errors]


def test_default_configuration_passes_every_check():
    assert check_settings() == [] and check_policy(None) == []


def test_non_integer_setting_is_reported_with_its_name(settings):
    settings.INVALID_SETTINGS = {"IMAGE_TAG_QUOTA": "lots"}

    errors = check_settings()

    assert ids(errors) == ["imageservice.E001"]
    assert "IMAGE_TAG_QUOTA: 'lots'" in errors[0].msg


def test_unknown_hashing_algorithm_is_refused(settings):
    settings.HASHING_ALGORITHM = "crc99"

    assert ids(check_settings()) == ["imageservice.E003"]


def test_non_positive_limit_is_refused(settings):
    settings.API_LIMIT_MAX = 0

    assert ids(check_settings()) == ["imageservice.E004"]


def test_login_limits_below_their_minimum_are_refused(settings):
    settings.TOKEN_EXPIRATION, settings.LOGIN_FAILURES_PER_ADDRESS = 0, -1
    settings.LOCKOUT_FAILURE_ATTEMPTS = 0  # off, which is allowed

    errors = check_settings()

    assert ids(errors) == ["imageservice.E030", "imageservice.E030"]
    assert [error.msg for error in errors] == [
        "TOKEN_EXPIRATION must be at least 1 (got 0).",
        "LOGIN_FAILURES_PER_ADDRESS must be at least 0 (got -1).",
    ]


def test_policy_file_with_unknown_rule_stops_start_up(settings, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('get_image: "rule:nonexistent"\n')
    settings.POLICY_FILE = str(policy)

    with pytest.raises(SystemCheckError, match=r"imageservice\.E010"):
        call_command("check")


def test_web_download_limits_must_be_positive_and_leave_a_worker_free(settings):
    settings.WEB_DOWNLOAD_DEADLINE = 0
    settings.WEB_DOWNLOAD_WORKERS = 2
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2, "timeout": 3600}

    found = check_settings()

    assert ids(found) == ["imageservice.E060", "imageservice.W062"]
    assert found[0].msg == "WEB_DOWNLOAD_DEADLINE must be positive (got 0)."


def test_web_download_deadline_beyond_the_job_timeout_is_a_warning(settings):
    settings.WEB_DOWNLOAD_DEADLINE = 4000

    assert ids(check_settings()) == ["imageservice.W061"]
