"""Personas and factories shared by the whole suite.

admin     operator: project "admin", roles admin, member, reader
owner     project A, roles member, reader: owns the images the tests create
member    project B, roles member, reader: the project an owner's image is shared with
outsider  project C, roles member, reader: sees nothing private of A's
reader    project A, role reader only: may look but not change or download
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from images import protections
from images.models import Image, ImageMember, ImageProperty, ImageTag
from imageservice.identity import services as identity
from imageservice.identity.credentials import VALIDATED_ENVIRON_KEY
from imageservice.identity.tokens import forget_all_tokens
from tests.live.conftest import FAST_PASSWORD_HASHERS

TESTS_DIR = Path(__file__).resolve().parent
# Every test under these directories carries the markers, so `make test-fast`
# (-m "not live and not browser") can leave out what needs a live server or chromium, and
# -m keystone picks the tests that need a real Keystone (which also need a live server).
DIRECTORY_MARKERS = {
    "live": [pytest.mark.live],
    "nodes": [pytest.mark.live],
    "browser": [pytest.mark.browser],
    "keystone": [pytest.mark.live, pytest.mark.keystone],
}

PERSONAS = {
    "admin": ("admin", ("admin", "member", "reader")),
    "owner": ("project-a", ("member", "reader")),
    "member": ("project-b", ("member", "reader")),
    "outsider": ("project-c", ("member", "reader")),
    "reader": ("project-a", ("reader",)),
}


@dataclass
class Persona:
    name: str
    user: object
    project_id: str
    token: str

    def client(self) -> APIClient:
        return APIClient(HTTP_X_AUTH_TOKEN=self.token)

    def keystone_client(self) -> APIClient:
        """A client whose requests carry what keystonemiddleware sets for this persona's
        token in Keystone mode (the middleware itself is tested against a real Keystone in
        tests/keystone)."""
        return APIClient(
            **{
                VALIDATED_ENVIRON_KEY: True,
                "HTTP_X_IDENTITY_STATUS": "Confirmed",
                "HTTP_X_USER_ID": self.user.keystone_id,
                "HTTP_X_PROJECT_ID": self.project_id,
                "HTTP_X_ROLES": ",".join(sorted(self.user.role_names())),
            }
        )


# Tests that share state which only one process at a time may use; under pytest-xdist (--dist
# loadgroup) each group runs in one worker. The Ceph pool of scripts/ceph-aio.sh: each test
# removes the images that appeared in the pool while it ran (tests/storage/rbd_support.py),
# which would take another process's. The real Keystone's catalog: tests/keystone points its
# image endpoints at the server of the test.
CEPH_TEST_FILES = {"storage/test_rbd.py", "storage/test_rbd_api.py", "live/test_rbd_store.py"}


# What a test needs to touch the database of DATABASE_URL (or the job broker of REDIS_URL):
# pytest-django's database fixtures, or a server or command of the directories that start them.
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}
SERVER_DIRECTORIES = {"live", "nodes", "keystone", "browser"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="deselect the tests that touch neither the database nor the job broker (store "
        "drivers against their services, parsers): run again on another database, they would "
        "run the same code the same way",
    )


# tryfirst: pytest-xdist reads the xdist_group markers in its own hook of this name.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(TESTS_DIR):
            continue  # collected from elsewhere in the same run
        relative = item.path.relative_to(TESTS_DIR)
        for marker in DIRECTORY_MARKERS.get(relative.parts[0], []):
            item.add_marker(marker)
        if relative.as_posix() in CEPH_TEST_FILES or uses_rbd_store_under_test(item):
            item.add_marker(pytest.mark.ceph)
            item.add_marker(pytest.mark.xdist_group("ceph"))
        elif relative.parts[0] == "keystone":
            item.add_marker(pytest.mark.xdist_group("keystone"))
    if config.getoption("database_tests_only"):
        deselected = [item for item in items if not uses_database(item)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if uses_database(item)]


def uses_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(item.fixturenames):
        return True
    return item.path.relative_to(TESTS_DIR).parts[0] in SERVER_DIRECTORIES


def uses_rbd_store_under_test(item: pytest.Item) -> bool:
    """A driver contract test (tests/storage) run against the rbd store."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("under_test") == "rbd"


@pytest.fixture(autouse=True)
def forget_validated_tokens():
    """Each test's database is rolled back, so no validated token may outlive it."""
    forget_all_tokens()
    protections.forget_property_rules()
    yield
    forget_all_tokens()
    protections.forget_property_rules()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Each test gets its own DATA_DIR, so stores start empty and nothing leaks to var/."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    settings.NODE_STAGING_URI = (settings.DATA_DIR / "staging").as_uri()
    # Import jobs run inline, in the request that enqueued them.
    settings.IMPORT_JOBS_SYNC = True
    return settings.DATA_DIR


@pytest.fixture
def personas(db) -> dict[str, Persona]:
    cast = {}
    for name, (project_name, roles) in PERSONAS.items():
        project, _ = identity.ensure_project(project_name)
        user, _ = identity.ensure_user(name, project, roles)
        _, token = identity.issue_token(user)
        cast[name] = Persona(name, user, project.id, token)
    return cast


@pytest.fixture
def admin(personas) -> Persona:
    return personas["admin"]


@pytest.fixture
def owner(personas) -> Persona:
    return personas["owner"]


@pytest.fixture
def member(personas) -> Persona:
    return personas["member"]


@pytest.fixture
def outsider(personas) -> Persona:
    return personas["outsider"]


@pytest.fixture
def reader(personas) -> Persona:
    return personas["reader"]


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def keystone_mode(settings):
    """The API authenticates as in Keystone mode: from keystonemiddleware's headers."""
    settings.AUTH_STRATEGY = "keystone"
    settings.KEYSTONE_AUTHTOKEN = {"www_authenticate_uri": "http://keystone.test:5000/v3"}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "imageservice.identity.authentication.KeystoneAuthentication"
        ],
    }
    return settings


@pytest.fixture
def make_image(db, owner):
    """Factory: an image row owned by project A unless told otherwise."""

    def make(*, properties=None, tags=(), members=(), **fields) -> Image:
        fields.setdefault("owner", owner.project_id)
        image = Image.objects.create(**fields)
        for name, value in (properties or {}).items():
            ImageProperty.objects.create(image=image, name=name, value=value)
        for tag in tags:
            ImageTag.objects.create(image=image, value=tag)
        for member_id, status in dict(members).items():
            ImageMember.objects.create(image=image, member_id=member_id, status=status)
        return image

    return make


@pytest.fixture(scope="session")
def qemu_img() -> str:
    """qemu-img, which the image_conversion tests need; its absence fails them, never skips."""
    path = shutil.which("qemu-img")
    assert path, "qemu-img is missing: run `make system-deps` as root (Debian package qemu-utils)"
    return path


@pytest.fixture
def without_qemu_img(monkeypatch, tmp_path):
    """A PATH on which qemu-img cannot be found: any attempt to run it fails loudly."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


SWIFT_AIO = Path(settings.BASE_DIR) / "scripts" / "swift-aio.sh"


@pytest.fixture(scope="session")
def swift_service() -> dict[str, str]:
    """A real Swift with its S3 API on loopback (``scripts/swift-aio.sh``), started (and on a
    fresh machine installed) on first use and left running for later runs."""
    started = subprocess.run([str(SWIFT_AIO), "start"], capture_output=True, text=True, timeout=600)
    assert started.returncode == 0, f"swift-aio.sh start failed:\n{started.stdout}{started.stderr}"
    facts = subprocess.run(
        [str(SWIFT_AIO), "status", "env"], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(line.split("=", 1) for line in facts.stdout.splitlines() if "=" in line)
