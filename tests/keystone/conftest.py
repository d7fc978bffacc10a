"""A real Keystone (scripts/keystone-aio.sh) and a live imageservice in Keystone mode behind it.

The Keystone session fixture starts keystone-aio (installing it on first use) and reads its
facts; ``keystone_service`` starts a gunicorn of the live server (tests/live) configured as an
operator would: a ``glance-api.conf`` with ``[paste_deploy] flavor = keystone`` and a
``[keystone_authtoken]`` section for the ``glance`` service user, and points the catalog's
image endpoints at it. Keystone's users (scripts/README.md):

admin  project admin, role admin       alice  project alpha, role member
bob    project beta, role member       rita   project alpha, role reader
glance project service, roles service and admin (the service user validating tokens)
helper project service, role member (a service user without the service role)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from keystoneauth1 import session
from keystoneauth1.identity import v3

from tests.live import conftest as live
from tests.live.conftest import LiveService

# The live server's fixtures, shared with this directory (one live server per session).
live_service = live.live_service
extra_live_service = live.extra_live_service
live_worker = live.live_worker
unique = live.unique

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYSTONE_AIO = PROJECT_ROOT / "scripts" / "keystone-aio.sh"


def keystone_aio(*args: str) -> str:
    result = subprocess.run(
        [str(KEYSTONE_AIO), *args],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"keystone-aio.sh {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Keystone:
    facts: dict[str, str]

    @property
    def auth_url(self) -> str:
        return self.facts["KEYSTONE_AUTH_URL"]

    def user_id(self, user: str) -> str:
        return self.facts[f"{user.upper()}_USER_ID"]

    def project_id(self, project: str) -> str:
        return self.facts[f"{project.upper()}_PROJECT_ID"]

    def password(self, user: str) -> str:
        return self.facts[f"{user.upper()}_PASSWORD"]

    def auth(self, user: str) -> v3.Password:
        """Password auth scoped to ``user``'s project."""
        return v3.Password(
            auth_url=self.auth_url,
            username=user,
            password=self.password(user),
            project_name=self.facts[f"{user.upper()}_PROJECT"],
            user_domain_id="default",
            project_domain_id="default",
        )

    def session(self, user: str) -> session.Session:
        return session.Session(auth=self.auth(user))

    def token(self, user: str) -> str:
        """A new token: a fresh keystoneauth plugin each time, so never one cached before."""
        return self.session(user).get_token()

    def revoke(self, token: str) -> None:
        admin = self.session("admin")
        admin.delete(f"{self.auth_url}/auth/tokens", headers={"X-Subject-Token": token})

    def clouds_yaml(self, path: Path, users: list[str]) -> Path:
        """A password clouds.yaml with one cloud per user, named after the user."""
        clouds = {}
        for user in users:
            clouds[user] = {
                "auth": {
                    "auth_url": self.auth_url,
                    "username": user,
                    "password": self.password(user),
                    "project_name": self.facts[f"{user.upper()}_PROJECT"],
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": self.facts["KEYSTONE_REGION"],
                "identity_api_version": 3,
                "image_api_version": 2,
            }
        path.write_text(yaml.safe_dump({"clouds": clouds}))
        return path


@pytest.fixture(scope="session")
def keystone() -> Keystone:
    keystone_aio("start")
    out = keystone_aio("status", "env")
    return Keystone(dict(line.split("=", 1) for line in out.splitlines() if "=" in line))


def authtoken_section(keystone: Keystone, **overrides: str) -> str:
    options = {
        "www_authenticate_uri": keystone.auth_url,
        "auth_url": keystone.auth_url,
        "auth_type": "password",
        "username": "glance",
        "password": keystone.password("glance"),
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "service_token_roles": "service",
        "service_token_roles_required": "true",
        **overrides,
    }
    return "[keystone_authtoken]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


@pytest.fixture(scope="session")
def keystone_service(keystone, extra_live_service, tmp_path_factory) -> LiveService:
    """The imageservice in Keystone mode, from a glance-api.conf; the catalog points at it."""
    conf = tmp_path_factory.mktemp("keystone-conf") / "glance-api.conf"
    conf.write_text("[paste_deploy]\nflavor = keystone\n\n" + authtoken_section(keystone))
    service = extra_live_service(GLANCE_API_CONF=str(conf))
    keystone_aio("set-image-endpoint", service.url)
    return service


@pytest.fixture(scope="session")
def keystone_variant(keystone, extra_live_service) -> Callable[..., LiveService]:
    """Another Keystone-mode server with some settings changed through the environment
    (``KEYSTONE_AUTHTOKEN_<OPTION>``, ``POLICY_FILE``…); not in the catalog."""

    def start(**settings: str) -> LiveService:
        env = {
            "AUTH_STRATEGY": "keystone",
            "KEYSTONE_AUTHTOKEN_WWW_AUTHENTICATE_URI": keystone.auth_url,
            "KEYSTONE_AUTHTOKEN_AUTH_URL": keystone.auth_url,
            "KEYSTONE_AUTHTOKEN_AUTH_TYPE": "password",
            "KEYSTONE_AUTHTOKEN_USERNAME": "glance",
            "KEYSTONE_AUTHTOKEN_PASSWORD": keystone.password("glance"),
            "KEYSTONE_AUTHTOKEN_PROJECT_NAME": "service",
            "KEYSTONE_AUTHTOKEN_USER_DOMAIN_NAME": "Default",
            "KEYSTONE_AUTHTOKEN_PROJECT_DOMAIN_NAME": "Default",
            **settings,
        }
        return extra_live_service(**env)

    return start


@pytest.fixture(autouse=True)
def catalog_points_at_keystone_service(keystone_service) -> None:
    """Clients that find the image service through Keystone's catalog reach this session's
    server, not whatever an earlier session registered there."""
