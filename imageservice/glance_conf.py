"""An operator's ``glance-api.conf`` (``GLANCE_API_CONF``) as a source of settings.

``settings.py`` reads each of its options from the environment first and then, for the options
listed in :data:`FILE_OPTIONS`, from the file, so an operator coming from Glance hands over the
file they have and overrides single values with environment variables. The stores come from
``[DEFAULT] enabled_backends`` and one section per store, with glance_store's option names
(:func:`stores_from_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imageservice.config_syntax import ConfigSyntaxError, IniFile, parse_dict, read_ini

# Environment variable → (section, option) of glance-api.conf holding the same setting.
FILE_OPTIONS: dict[str, tuple[str, str]] = {
    "PUBLIC_ENDPOINT": ("DEFAULT", "public_endpoint"),
    "LIMIT_PARAM_DEFAULT": ("DEFAULT", "limit_param_default"),
    "API_LIMIT_MAX": ("DEFAULT", "api_limit_max"),
    "IMAGE_PROPERTY_QUOTA": ("DEFAULT", "image_property_quota"),
    "IMAGE_TAG_QUOTA": ("DEFAULT", "image_tag_quota"),
    "IMAGE_MEMBER_QUOTA": ("DEFAULT", "image_member_quota"),
    "IMAGE_SIZE_CAP": ("DEFAULT", "image_size_cap"),
    "USER_STORAGE_QUOTA": ("DEFAULT", "user_storage_quota"),
    "USE_KEYSTONE_LIMITS": ("DEFAULT", "use_keystone_limits"),
    "HASHING_ALGORITHM": ("DEFAULT", "hashing_algorithm"),
    "SHOW_IMAGE_DIRECT_URL": ("DEFAULT", "show_image_direct_url"),
    "SHOW_MULTIPLE_LOCATIONS": ("DEFAULT", "show_multiple_locations"),
    "ENABLED_IMPORT_METHODS": ("DEFAULT", "enabled_import_methods"),
    "DISK_FORMATS": ("image_format", "disk_formats"),
    "CONTAINER_FORMATS": ("image_format", "container_formats"),
    "REQUIRE_IMAGE_FORMAT_MATCH": ("image_format", "require_image_format_match"),
    "TASK_TIME_TO_LIVE": ("task", "task_time_to_live"),
    "POLICY_FILE": ("oslo_policy", "policy_file"),
    "DEFAULT_BACKEND": ("glance_store", "default_backend"),
    "TRANSPORT_URL": ("DEFAULT", "transport_url"),
    "CONTROL_EXCHANGE": ("DEFAULT", "control_exchange"),
    "DEFAULT_PUBLISHER_ID": ("DEFAULT", "default_publisher_id"),
    "DISABLED_NOTIFICATIONS": ("DEFAULT", "disabled_notifications"),
    "NOTIFICATION_DRIVER": ("oslo_messaging_notifications", "driver"),
    "NOTIFICATION_TOPICS": ("oslo_messaging_notifications", "topics"),
    "NOTIFICATION_TRANSPORT_URL": ("oslo_messaging_notifications", "transport_url"),
    "NOTIFICATION_RETRY": ("oslo_messaging_notifications", "retry"),
}
# Glance's multi-store staging area: a filesystem store section of its own. Here its
# `store_type` (file, the default, swift or s3) may put staging into an object store, with that
# type's glance_store options in the same section.
STAGING_SECTION = "os_glance_staging_store"
# Environment overrides of that section: STAGING_STORE_TYPE=swift sets `store_type`,
# STAGING_STORE_SWIFT_STORE_CONTAINER=... sets `swift_store_container`.
STAGING_ENV_PREFIX = "STAGING_STORE_"
# keystonemiddleware's options, in the section every OpenStack service gives it.
AUTHTOKEN_SECTION = "keystone_authtoken"
# Environment overrides of that section: KEYSTONE_AUTHTOKEN_PASSWORD=... sets `password`.
AUTHTOKEN_ENV_PREFIX = "KEYSTONE_AUTHTOKEN_"
OSLO_LIMIT_SECTION = "oslo_limit"
OSLO_LIMIT_ENV_PREFIX = "OSLO_LIMIT_"


@dataclass(frozen=True)
class GlanceConf:
    """The file as read, or an empty one when ``GLANCE_API_CONF`` is unset or unreadable."""

    path: str = ""
    ini: IniFile | None = None
    problem: str = ""  # why the file could not be used, for the start-up check

    def option(self, section: str, name: str) -> str | None:
        if self.ini is None:
            return None
        found = (
            self.ini.defaults.get(name) if section == "DEFAULT" else self.ini.value(section, name)
        )
        return found.text if found is not None else None

    def section_options(self, section: str) -> dict[str, str] | None:
        """The options written in ``section`` itself (not inherited from ``[DEFAULT]``)."""
        if self.ini is None or section not in self.ini.sections:
            return None
        return {name: value.text for name, value in self.ini.sections[section].options.items()}


def load(path: str) -> GlanceConf:
    if not path:
        return GlanceConf()
    try:
        text = Path(path).read_text(encoding="utf-8")
        return GlanceConf(path, read_ini(text, strict=False))
    except (OSError, UnicodeDecodeError, ConfigSyntaxError) as error:
        return GlanceConf(path, problem=str(error))


@dataclass(frozen=True)
class StoresFromFile:
    """``enabled_backends`` of the file: name → glance_store options plus ``type``."""

    backends: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def stores_from_file(conf: GlanceConf) -> StoresFromFile:
    declared = conf.option("DEFAULT", "enabled_backends")
    if not declared:
        return StoresFromFile()
    try:
        types = parse_dict(declared)
    except ConfigSyntaxError as error:
        return StoresFromFile(problems=[f"[DEFAULT] enabled_backends: {error}"])
    backends, problems = {}, []
    for name, store_type in types.items():
        options = conf.section_options(name)
        if options is None:
            problems.append(f"enabled_backends names {name}:{store_type} but [{name}] is missing")
            options = {}
        backends[name] = {**options, "type": store_type}
    return StoresFromFile(backends, problems)


def staging_uri(conf: GlanceConf) -> str | None:
    """The staging area the file names: ``[os_glance_staging_store]``, else ``node_staging_uri``."""
    directory = conf.option(STAGING_SECTION, "filesystem_store_datadir")
    if directory:
        return Path(directory).resolve().as_uri()
    return conf.option("DEFAULT", "node_staging_uri")


def staging_store_options(conf: GlanceConf, environ: Mapping[str, str]) -> dict[str, str]:
    """``[os_glance_staging_store]`` of the file, overridden option by option by the
    environment's ``STAGING_STORE_<OPTION>`` variables; ``STAGING_STORE_TYPE`` is ``store_type``."""
    options = dict(conf.section_options(STAGING_SECTION) or {})
    for name, value in environ.items():
        if name.startswith(STAGING_ENV_PREFIX) and len(name) > len(STAGING_ENV_PREFIX):
            option = name[len(STAGING_ENV_PREFIX) :].lower()
            options["store_type" if option == "type" else option] = value.strip()
    return options


def auth_strategy(conf: GlanceConf) -> str:
    """``keystone`` when ``[paste_deploy] flavor`` is Glance's ``keystone`` or
    ``keystone+cachemanagement`` (any ``keystone`` pipeline), else ``local``."""
    flavor = (conf.option("paste_deploy", "flavor") or "").strip().lower()
    return "keystone" if flavor.split("+")[0] == "keystone" else "local"


def keystone_authtoken(conf: GlanceConf, environ: Mapping[str, str]) -> dict[str, str]:
    """``[keystone_authtoken]`` of the file, overridden option by option by the environment's
    ``KEYSTONE_AUTHTOKEN_<OPTION>`` variables (``KEYSTONE_AUTHTOKEN_AUTH_URL`` → ``auth_url``)."""
    return _section_with_overrides(conf, AUTHTOKEN_SECTION, environ, AUTHTOKEN_ENV_PREFIX)


def oslo_limit(conf: GlanceConf, environ: Mapping[str, str]) -> dict[str, str]:
    """``[oslo_limit]`` (Keystone's unified limits: how to reach Keystone and which endpoint's
    limits apply), overridden by ``OSLO_LIMIT_<OPTION>`` variables."""
    return _section_with_overrides(conf, OSLO_LIMIT_SECTION, environ, OSLO_LIMIT_ENV_PREFIX)


def _section_with_overrides(
    conf: GlanceConf, section: str, environ: Mapping[str, str], prefix: str
) -> dict[str, str]:
    options = dict(conf.section_options(section) or {})
    for name, value in environ.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            options[name[len(prefix) :].lower()] = value.strip()
    return options
