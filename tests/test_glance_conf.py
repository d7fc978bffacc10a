"""An operator's glance-api.conf (GLANCE_API_CONF): options, stores and staging from the file,
the environment overriding it, and what the start-up checks and ``check_stores`` say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from imageservice import glance_conf

CONF = """\
[DEFAULT]
enabled_backends = fast:file, slow:file
image_size_cap = 2048
enabled_import_methods = ['glance-direct', 'copy-image']

[glance_store]
default_backend = slow

[fast]
filesystem_store_datadir = {root}/fast
store_description = Fast disk
filesystem_store_datadri = {root}/typo

[slow]
filesystem_store_datadir = {root}/slow
weight = 5

[os_glance_staging_store]
filesystem_store_datadir = {root}/staging
"""


@pytest.fixture
def conf_file(tmp_path) -> Path:
    path = tmp_path / "glance-api.conf"
    path.write_text(CONF.format(root=tmp_path))
    return path


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """manage.py in a fresh process: settings are read once, at start."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def printed_settings(names: list[str], env: dict[str, str]) -> list[str]:
    code = "from django.conf import settings as s; " + "; ".join(
        f"print(repr(s.{name}))" for name in names
    )
    result = run_manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-len(names) :]


def test_stores_come_from_enabled_backends_and_their_sections(conf_file, tmp_path):
    stores = glance_conf.stores_from_file(glance_conf.load(str(conf_file)))

    assert stores.problems == []
    assert stores.backends == {
        "fast": {
            "type": "file",
            "filesystem_store_datadir": f"{tmp_path}/fast",
            "store_description": "Fast disk",
            "filesystem_store_datadri": f"{tmp_path}/typo",
        },
        "slow": {"type": "file", "filesystem_store_datadir": f"{tmp_path}/slow", "weight": "5"},
    }


def test_a_store_without_its_section_is_a_problem(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text("[DEFAULT]\nenabled_backends = fast:file, lost:swift\n[fast]\n")

    stores = glance_conf.stores_from_file(glance_conf.load(str(path)))

    assert stores.problems == ["enabled_backends names lost:swift but [lost] is missing"]


def test_an_unreadable_file_names_the_line(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text("[DEFAULT]\nimage_size_cap\n")

    conf = glance_conf.load(str(path))

    assert conf.problem.startswith("line 2:")
    assert conf.option("DEFAULT", "image_size_cap") is None


def test_settings_read_the_file_and_the_environment_overrides_it(conf_file, tmp_path):
    env = {"GLANCE_API_CONF": str(conf_file), "DATA_DIR": str(tmp_path / "data")}

    from_file = printed_settings(
        ["IMAGE_SIZE_CAP", "DEFAULT_BACKEND", "ENABLED_IMPORT_METHODS", "NODE_STAGING_URI"], env
    )
    overridden = printed_settings(
        ["IMAGE_SIZE_CAP", "ENABLED_BACKENDS"],
        {**env, "IMAGE_SIZE_CAP": "4096", "ENABLED_BACKENDS": f"only:{tmp_path}/only"},
    )

    assert from_file == [
        "2048",
        "'slow'",
        "['glance-direct', 'copy-image']",
        repr((tmp_path / "staging").as_uri()),
    ]
    assert overridden == ["4096", repr({"only": f"{tmp_path}/only"})]


def test_check_stores_reports_each_store_and_unknown_options(conf_file, tmp_path):
    env = {"GLANCE_API_CONF": str(conf_file), "DATA_DIR": str(tmp_path / "data")}

    result = run_manage("check_stores", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "fast [file]: OK",
        "slow (default) [file]: OK",
        "warning: [fast] filesystem_store_datadri: unknown option, ignored",
        "All 2 store(s) can be used.",
    ]
    assert (tmp_path / "fast").is_dir() and (tmp_path / "slow").is_dir()


def test_unsupported_store_type_is_a_start_up_error_and_check_stores_fails(conf_file, tmp_path):
    conf_file.write_text(
        conf_file.read_text().replace("slow:file", "slow:file, tape:tape") + "[tape]\n"
    )
    env = {"GLANCE_API_CONF": str(conf_file), "DATA_DIR": str(tmp_path / "data")}

    checked = run_manage("check", env=env)
    stores = run_manage("check_stores", env=env)

    assert checked.returncode == 1
    assert "(imageservice.E007) Store cannot be used: tape: store type 'tape'" in checked.stderr
    assert "(imageservice.W007) [fast] filesystem_store_datadri: unknown option" in checked.stderr
    assert stores.returncode == 1
    assert "tape [unavailable]: UNAVAILABLE: tape: store type 'tape' is not supported" in (
        stores.stdout
    )
    assert "1 of 3 store(s) cannot be used." in stores.stderr


def test_require_image_format_match_comes_from_the_image_format_section(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text("[image_format]\nrequire_image_format_match = False\n")
    env = {"GLANCE_API_CONF": str(path), "DATA_DIR": str(tmp_path / "data")}

    from_file = printed_settings(["REQUIRE_IMAGE_FORMAT_MATCH"], env)
    overridden = printed_settings(
        ["REQUIRE_IMAGE_FORMAT_MATCH"], {**env, "REQUIRE_IMAGE_FORMAT_MATCH": "true"}
    )
    default = printed_settings(["REQUIRE_IMAGE_FORMAT_MATCH"], {"DATA_DIR": env["DATA_DIR"]})

    assert (from_file, overridden, default) == (["False"], ["True"], ["True"])


def test_notification_options_come_from_the_file(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text(
        "[DEFAULT]\n"
        "transport_url = rabbit://guest:guest@127.0.0.1:5672/\n"
        "default_publisher_id = image.node-1\n"
        "disabled_notifications = image.update,task\n"
        "[oslo_messaging_notifications]\n"
        "driver = messagingv2\n"
        "topics = notifications,audit\n"
    )
    env = {"GLANCE_API_CONF": str(path), "DATA_DIR": str(tmp_path / "data")}
    names = [
        "NOTIFICATION_DRIVER",
        "NOTIFICATION_TOPICS",
        "TRANSPORT_URL",
        "DEFAULT_PUBLISHER_ID",
        "DISABLED_NOTIFICATIONS",
        "CONTROL_EXCHANGE",
    ]

    assert printed_settings(names, env) == [
        "'messagingv2'",
        "['notifications', 'audit']",
        "'rabbit://guest:guest@127.0.0.1:5672/'",
        "'image.node-1'",
        "['image.update', 'task']",
        "'glance'",
    ]
    assert printed_settings(["NOTIFICATION_DRIVER"], {**env, "NOTIFICATION_DRIVER": "noop"}) == [
        "'noop'"
    ]
