"""Console login with Keystone credentials (Keystone mode).

The operator types a Keystone user name, password and domain. Keystone checks them; only a
user holding the ``admin`` role on one of their projects gets in. Django's sessions need a user
row, so each such login creates or refreshes a *shadow* user: the Keystone user id as
``keystone_id``, ``<name>@<domain>`` as username, no usable password (the model backend can
never log it in), the project and roles of the admin-scoped token. Local console accounts keep
working through the model backend, which comes first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from keystoneauth1 import plugin, session
from keystoneauth1.exceptions import ClientException, Unauthorized
from keystoneauth1.identity import generic

from imageservice.identity.models import Project, User
from imageservice.identity.services import ensure_roles

logger = logging.getLogger(__name__)

OPERATOR_ROLE = "admin"
DEFAULT_DOMAIN = "Default"
TIMEOUT_SECONDS = 10
# A user with more projects than this is looked at in this many only (admin projects first).
MAX_PROJECTS_TRIED = 20


@dataclass(frozen=True)
class KeystoneIdentity:
    user_id: str
    user_name: str
    domain_name: str
    project_id: str | None
    project_name: str | None
    project_domain_name: str | None
    roles: frozenset[str]


def identity_url() -> str:
    """Where users authenticate: the public identity endpoint of ``[keystone_authtoken]``."""
    options = settings.KEYSTONE_AUTHTOKEN
    return options.get("www_authenticate_uri") or options.get("auth_url", "")


def keystone_login(username: str, password: str, domain: str) -> KeystoneIdentity | None:
    """The user as Keystone knows them, scoped to a project where they hold ``admin`` if they
    have one (else to none); None when Keystone refuses the credentials."""
    url = identity_url()
    sess = session.Session(timeout=TIMEOUT_SECONDS)
    unscoped = generic.Password(
        auth_url=url, username=username, password=password, user_domain_name=domain
    )
    try:
        access = unscoped.get_access(sess)
        projects = sess.get(
            "/auth/projects",
            auth=unscoped,
            endpoint_filter={"interface": plugin.AUTH_INTERFACE, "version": (3, 0)},
        ).json()["projects"]
    except Unauthorized:
        return None
    # The project Keystone calls the admin project is the likeliest place of an admin role.
    projects.sort(key=lambda project: project["name"] != "admin")
    scoped = None
    for project in projects[:MAX_PROJECTS_TRIED]:
        rescoped = generic.Token(auth_url=url, token=access.auth_token, project_id=project["id"])
        scoped = rescoped.get_access(sess)
        if OPERATOR_ROLE in {role.lower() for role in scoped.role_names}:
            break
    return KeystoneIdentity(
        user_id=access.user_id,
        user_name=access.username,
        domain_name=access.user_domain_name,
        project_id=scoped.project_id if scoped else None,
        project_name=scoped.project_name if scoped else None,
        project_domain_name=scoped.project_domain_name if scoped else None,
        roles=frozenset(role.lower() for role in scoped.role_names) if scoped else frozenset(),
    )


@transaction.atomic
def shadow_user(identity: KeystoneIdentity) -> User:
    """Create or refresh the local row that carries a Keystone user's console session."""
    project = None
    if identity.project_id:
        project, _ = Project.objects.update_or_create(
            id=identity.project_id,
            defaults={"name": f"{identity.project_name}@{identity.project_domain_name}"},
        )
    user = User.objects.filter(keystone_id=identity.user_id).first()
    if user is None:
        user = User(keystone_id=identity.user_id)
    user.username = f"{identity.user_name}@{identity.domain_name}"
    user.project = project
    user.is_staff = OPERATOR_ROLE in identity.roles
    user.set_unusable_password()
    user.save()
    user.roles.set(ensure_roles(identity.roles))
    return user


class KeystoneBackend(ModelBackend):
    """Django authentication backend checking user, password and domain against Keystone.

    The domain comes from the ``domain`` argument, else the login form's ``domain`` field,
    else ``Default``. Users without the ``admin`` role are refused here already.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        domain: str | None = None,
        **kwargs,
    ) -> User | None:
        if settings.AUTH_STRATEGY != "keystone" or not username or not password:
            return None
        if domain is None and request is not None:
            domain = request.POST.get("domain", "").strip()
        try:
            identity = keystone_login(username, password, domain or DEFAULT_DOMAIN)
        except ClientException as error:
            logger.warning("Keystone console login of %s failed: %s", username, error)
            return None
        if identity is None or OPERATOR_ROLE not in identity.roles:
            return None
        try:
            return shadow_user(identity)
        except IntegrityError as error:
            # Another row holds the name (a local account called "<name>@<domain>").
            logger.warning("Keystone user %s cannot have a console row: %s", username, error)
            return None
