"""The effective import settings: the console's ``ImportSettings`` row, else the environment.

``current()`` is read when an import is accepted (the plugin values go into the task's input, see
:func:`importplugins.chain.import_settings_snapshot`) and by the web-download URI filter.
``apply()`` is the one write path: the console saves through it, and ``manage.py
load_import_settings`` fills the row with it from ``environment_values()`` or from a Glance
``glance-image-import.conf`` (``load_glance_conf()``). ``validate()`` and ``check_setting()`` hold
the rules all of them enforce.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction

from imageservice import events
from imageservice.config_syntax import read_ini, split_list
from importplugins.conversion import OUTPUT_FORMATS
from importplugins.inject_metadata import parse_inject_properties
from importplugins.models import ImportPluginStep, ImportSettings
from importplugins.registry import installed_plugins

LIST_FIELDS = (
    "ignore_user_roles",
    "allowed_schemes",
    "disallowed_schemes",
    "allowed_hosts",
    "disallowed_hosts",
    "allowed_ports",
    "disallowed_ports",
)

# Glance option (section, name) → our field. Options a file leaves out keep the environment value.
GLANCE_OPTIONS = {
    ("image_import_opts", "image_import_plugins"): "import_plugins",
    ("inject_metadata_properties", "inject"): "inject_metadata_properties",
    ("inject_metadata_properties", "ignore_user_roles"): "ignore_user_roles",
    ("image_conversion", "output_format"): "image_conversion_output_format",
    **{
        ("import_filtering_opts", name): name for name in LIST_FIELDS if name != "ignore_user_roles"
    },
}


@dataclass(frozen=True)
class ImportSettingsValues:
    """The values in force; ``inject_metadata_properties`` is unparsed ``k:v,k2:v2`` text."""

    import_plugins: list[str]
    inject_metadata_properties: str
    ignore_user_roles: list[str]
    image_conversion_output_format: str
    allowed_schemes: list[str]
    disallowed_schemes: list[str]
    allowed_hosts: list[str]
    disallowed_hosts: list[str]
    allowed_ports: list[str]
    disallowed_ports: list[str]
    source: str = "environment"

    def as_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.pop("source")
        return values


def environment_values() -> ImportSettingsValues:
    return ImportSettingsValues(
        import_plugins=list(settings.IMAGE_IMPORT_PLUGINS),
        inject_metadata_properties=settings.INJECT_METADATA_PROPERTIES,
        ignore_user_roles=list(settings.IGNORE_USER_ROLES),
        image_conversion_output_format=settings.IMAGE_CONVERSION_OUTPUT_FORMAT,
        allowed_schemes=list(settings.IMPORT_ALLOWED_SCHEMES),
        disallowed_schemes=list(settings.IMPORT_DISALLOWED_SCHEMES),
        allowed_hosts=list(settings.IMPORT_ALLOWED_HOSTS),
        disallowed_hosts=list(settings.IMPORT_DISALLOWED_HOSTS),
        allowed_ports=[str(port) for port in settings.IMPORT_ALLOWED_PORTS],
        disallowed_ports=[str(port) for port in settings.IMPORT_DISALLOWED_PORTS],
    )


def current() -> ImportSettingsValues:
    """The database row's values if the row exists, else the environment settings."""
    try:
        row = ImportSettings.objects.filter(pk=ImportSettings.SINGLETON_ID).first()
    except DatabaseError:
        # No table yet (before migrate): the environment settings are all there is.
        row = None
    if row is None:
        return environment_values()
    return values_of(row)


def values_of(row: ImportSettings) -> ImportSettingsValues:
    return ImportSettingsValues(
        import_plugins=[step.name for step in row.plugin_steps.order_by("position", "id")],
        inject_metadata_properties=row.inject_metadata_properties,
        image_conversion_output_format=row.image_conversion_output_format,
        source="database",
        **{name: glance_list(getattr(row, name)) for name in LIST_FIELDS},
    )


def glance_list(value: str) -> list[str]:
    """A list option as Glance declares its import options: ``a, b`` or ``['a', 'b']``."""
    return split_list(value, bounds=True, quotes=True)


class InvalidImportSettings(ValueError):
    """A setting the import chain cannot run with; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate(values: ImportSettingsValues) -> None:
    """Raise :class:`InvalidImportSettings` for the first setting in ``values`` that is unusable."""
    for field in SETTING_CHECKS:
        check_setting(field, getattr(values, field))


def check_setting(field: str, value: object) -> None:
    """Raise :class:`InvalidImportSettings` unless ``value`` is usable as the setting ``field``.

    Fields without a rule (the filter lists, ``ignore_user_roles``) accept any value.
    """
    check = SETTING_CHECKS.get(field)
    problem = check(value) if check else None
    if problem:
        raise InvalidImportSettings(field, problem)


def _plugins_problem(names: list[str]) -> str | None:
    installed = installed_plugins()
    unknown = [name for name in names if name not in installed]
    return f"unknown import plugin(s): {', '.join(unknown)}" if unknown else None


def _inject_problem(value: str) -> str | None:
    try:
        parse_inject_properties(value)
    except ValueError as error:
        return f"inject properties are invalid: {error}"
    return None


def _output_format_problem(value: str) -> str | None:
    if value in OUTPUT_FORMATS:
        return None
    return f"output format {value!r} is not one of {', '.join(sorted(OUTPUT_FORMATS))}"


SETTING_CHECKS = {
    "import_plugins": _plugins_problem,
    "inject_metadata_properties": _inject_problem,
    "image_conversion_output_format": _output_format_problem,
}


@transaction.atomic
def apply(values: ImportSettingsValues) -> ImportSettings:
    """Write ``values`` into the row (created if missing), replacing the plugin chain.

    Raises :class:`InvalidImportSettings` (and writes nothing) if ``validate`` refuses them.
    """
    validate(values)
    row = ImportSettings.objects.filter(pk=ImportSettings.SINGLETON_ID).first()
    before = _stored(row) if row is not None else {}
    row = row or ImportSettings(pk=ImportSettings.SINGLETON_ID)
    row.inject_metadata_properties = values.inject_metadata_properties
    row.image_conversion_output_format = values.image_conversion_output_format
    for name in LIST_FIELDS:
        setattr(row, name, ",".join(getattr(values, name)))
    row.save()
    row.plugin_steps.all().delete()
    ImportPluginStep.objects.bulk_create(
        ImportPluginStep(import_settings=row, position=position, name=name)
        for position, name in enumerate(values.import_plugins, start=1)
    )
    changes = events.field_changes(before, _stored(row))
    if changes:
        events.emit("import_settings.update", changes=changes)
    return row


def _stored(row: ImportSettings) -> dict[str, object]:
    """The row as the audit trail shows a change of it: each setting, the chain as a list."""
    fields = ("inject_metadata_properties", "image_conversion_output_format", *LIST_FIELDS)
    chain = list(row.plugin_steps.order_by("position").values_list("name", flat=True))
    return {**{name: getattr(row, name) for name in fields}, "import_plugins": chain}


def load_glance_conf(path: str | Path) -> ImportSettingsValues:
    """Read Glance's ``glance-image-import.conf``; options it leaves out keep the environment's.

    Raises ``OSError`` for a missing or unreadable file, ``ConfigSyntaxError`` for one that is
    not INI.
    """
    # Not strict: oslo.config lets a later line override an option given twice.
    ini = read_ini(Path(path).read_text(encoding="utf-8"), strict=False)
    changes: dict[str, object] = {}
    for (section, option), field in GLANCE_OPTIONS.items():
        found = ini.value(section, option)
        if found is None:
            continue
        raw = found.text.strip()
        if field in ("inject_metadata_properties", "image_conversion_output_format"):
            changes[field] = raw.strip("\"'") if field.startswith("image_") else raw
        else:
            changes[field] = glance_list(raw)
    return dataclasses.replace(environment_values(), source=str(path), **changes)
