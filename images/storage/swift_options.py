"""The options of a Swift store section, by glance_store's names and defaults, checked.

The account comes, as in glance_store, either from the section (``swift_store_auth_address``,
``swift_store_user``, ``swift_store_key``: authenticated in Keystone's ``default`` domain) or,
when ``swift_store_config_file`` is set, from the ``default_swift_reference`` section of that
file (``auth_address``, ``user``, ``key`` and the ``user_domain_*`` / ``project_domain_*``
options). Unlike glance_store, auth version 1 (Swift's tempauth) is accepted besides 3.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass, field

from images.storage.base import store_weight

# glance_store's "MB" for the large object options: 1000 KiB (it says so: a mixed meaning).
ONE_MB = 1000 * 1024
DEFAULT_CONTAINER = "glance"
DEFAULT_LARGE_OBJECT_SIZE = 5 * 1024  # MB
DEFAULT_LARGE_OBJECT_CHUNK_SIZE = 200  # MB
DEFAULT_REFERENCE = "ref1"
ENDPOINT_TYPES = ("publicURL", "adminURL", "internalURL")
AUTH_VERSIONS = {"1": "1", "1.0": "1", "3": "3", "3.0": "3"}
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})

SWIFT_OPTIONS = frozenset(
    {
        "swift_store_auth_address",
        "swift_store_user",
        "swift_store_key",
        "swift_store_auth_version",
        "swift_store_config_file",
        "default_swift_reference",
        "swift_store_container",
        "swift_store_create_container_on_put",
        "swift_store_large_object_size",
        "swift_store_large_object_chunk_size",
        "swift_store_auth_insecure",
        "swift_store_cacert",
        "swift_store_region",
        "swift_store_endpoint",
        "swift_store_endpoint_type",
        "swift_store_service_type",
    }
)


@dataclass(frozen=True)
class SwiftAccount:
    """Where and as whom the store authenticates."""

    auth_address: str
    user: str
    key: str = field(repr=False)
    auth_version: str = "3"
    user_domain_id: str | None = "default"
    user_domain_name: str | None = None
    project_domain_id: str | None = "default"
    project_domain_name: str | None = None

    @property
    def project_and_user(self) -> tuple[str, str]:
        """Keystone's project and user names, from glance_store's ``project:user``."""
        project, _, user = self.user.partition(":")
        return project, user


@dataclass(frozen=True)
class SwiftSettings:
    account: SwiftAccount
    reference: str
    container: str
    create_container: bool
    large_object_size: int  # bytes
    large_object_chunk_size: int  # bytes
    insecure: bool
    cacert: str | None
    region: str | None
    endpoint: str | None
    endpoint_type: str
    service_type: str
    description: str
    weight: int


def swift_settings(options: Mapping[str, str]) -> SwiftSettings:
    """A store section's settings; ``ValueError`` naming the option that cannot be used."""
    endpoint_type = options.get("swift_store_endpoint_type") or "publicURL"
    if endpoint_type not in ENDPOINT_TYPES:
        raise ValueError(
            f"swift_store_endpoint_type must be one of {', '.join(ENDPOINT_TYPES)}, "
            f"got {endpoint_type!r}"
        )
    return SwiftSettings(
        account=_account(options),
        reference=options.get("default_swift_reference") or DEFAULT_REFERENCE,
        container=_container(options.get("swift_store_container") or DEFAULT_CONTAINER),
        create_container=_flag(options, "swift_store_create_container_on_put"),
        large_object_size=_megabytes(
            options, "swift_store_large_object_size", DEFAULT_LARGE_OBJECT_SIZE
        ),
        large_object_chunk_size=_megabytes(
            options, "swift_store_large_object_chunk_size", DEFAULT_LARGE_OBJECT_CHUNK_SIZE
        ),
        insecure=_flag(options, "swift_store_auth_insecure"),
        cacert=options.get("swift_store_cacert") or None,
        region=options.get("swift_store_region") or None,
        endpoint=(options.get("swift_store_endpoint") or "").rstrip("/") or None,
        endpoint_type=endpoint_type,
        service_type=options.get("swift_store_service_type") or "object-store",
        description=options.get("store_description", ""),
        weight=store_weight(options),
    )


def _account(options: Mapping[str, str]) -> SwiftAccount:
    version = _auth_version("swift_store_auth_version", options.get("swift_store_auth_version"))
    if options.get("swift_store_config_file"):
        return _referenced_account(
            options["swift_store_config_file"],
            options.get("default_swift_reference") or DEFAULT_REFERENCE,
            version,
        )
    names = ("swift_store_auth_address", "swift_store_user", "swift_store_key")
    missing = [name for name in names if not options.get(name)]
    if missing:
        raise ValueError(f"needs {', '.join(missing)} (or swift_store_config_file)")
    return _checked(
        SwiftAccount(
            auth_address=options["swift_store_auth_address"],
            user=options["swift_store_user"],
            key=options["swift_store_key"],
            auth_version=version,
        ),
        "swift_store_user",
    )


def _referenced_account(path: str, reference: str, version: str) -> SwiftAccount:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as error:
        raise ValueError(f"swift_store_config_file {path} cannot be read: {error}") from None
    if not parser.has_section(reference):
        raise ValueError(f"swift_store_config_file {path} has no [{reference}] section")
    section = {name: _unquoted(value) for name, value in parser.items(reference)}
    missing = [name for name in ("auth_address", "user", "key") if not section.get(name)]
    if missing:
        raise ValueError(f"[{reference}] of {path} needs {', '.join(missing)}")
    user_domain_id, user_domain_name = _domain(section, "user")
    project_domain_id, project_domain_name = _domain(section, "project")
    account = SwiftAccount(
        auth_address=section["auth_address"],
        user=section["user"],
        key=section["key"],
        auth_version=_auth_version(
            f"auth_version in [{reference}]", section.get("auth_version") or version
        ),
        user_domain_id=user_domain_id,
        user_domain_name=user_domain_name,
        project_domain_id=project_domain_id,
        project_domain_name=project_domain_name,
    )
    return _checked(account, f"user in [{reference}]")


def _domain(section: Mapping[str, str], kind: str) -> tuple[str | None, str | None]:
    """``(id, name)`` of the user's or project's domain; as in glance_store, one given neither
    by id nor by name is the id ``default``."""
    domain_id = section.get(f"{kind}_domain_id") or None
    domain_name = section.get(f"{kind}_domain_name") or None
    if domain_id is None and domain_name is None:
        domain_id = "default"
    return domain_id, domain_name


def _checked(account: SwiftAccount, user_option: str) -> SwiftAccount:
    if not account.auth_address.startswith(("http://", "https://")):
        raise ValueError(f"the auth address must be an http(s) URL, got {account.auth_address!r}")
    project, user = account.project_and_user
    if account.auth_version == "3" and not (project and user and ":" not in user):
        raise ValueError(
            f"{user_option} must be project:user for auth version 3, got {account.user!r}"
        )
    return account


def _auth_version(option: str, value: str | None) -> str:
    # glance_store defaults to 3 (Keystone v3), the only version it still accepts.
    version = AUTH_VERSIONS.get((value or "3").strip())
    if version is None:
        raise ValueError(f"{option} must be 1 (tempauth) or 3 (Keystone v3), got {value!r}")
    return version


def _container(name: str) -> str:
    # One path segment of the object URLs and of the manifests' segment paths.
    if "/" in name or len(name) > 256:
        raise ValueError(f"swift_store_container must be a container name, got {name!r}")
    return name


def _flag(options: Mapping[str, str], name: str) -> bool:
    value = (options.get(name) or "false").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be true or false, got {options[name]!r}")


def _megabytes(options: Mapping[str, str], name: str, default: int) -> int:
    value = options.get(name) or str(default)
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of MB, got {value!r}") from None
    if count < 1:
        raise ValueError(f"{name} must be at least 1 (MB), got {count}")
    return count * ONE_MB


def _unquoted(value: str) -> str:
    # glance_store's parser of that file strips one pair of matching quotes.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
