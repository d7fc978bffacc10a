"""Seed the import settings row from the environment or a Glance ``glance-image-import.conf``."""

from __future__ import annotations

from django.core.management.base import CommandError

from imageservice.config_syntax import ConfigSyntaxError
from imageservice.events.context import AuditedCommand
from importplugins import import_settings


class Command(AuditedCommand):
    help = (
        "Store the import settings (plugin chain, inject properties, ignored roles, conversion "
        "format, web-download filters) in the database, from the environment values "
        "(--from-environment) or from a Glance glance-image-import.conf. Options the file "
        "leaves out keep the environment values. Overwrites what the console holds."
    )

    def add_arguments(self, parser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("conf", nargs="?", help="path of a glance-image-import.conf")
        source.add_argument("--from-environment", action="store_true")

    def handle(self, *args, conf=None, from_environment=False, **options) -> None:
        if from_environment:
            values = import_settings.environment_values()
        else:
            try:
                values = import_settings.load_glance_conf(conf)
            except (OSError, UnicodeDecodeError, ConfigSyntaxError) as error:
                raise CommandError(f"cannot read {conf}: {error}") from error
        try:
            import_settings.apply(values)
        except import_settings.InvalidImportSettings as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Import settings loaded from {values.source}:")
        for name, value in values.as_dict().items():
            shown = ", ".join(value) if isinstance(value, list) else value
            self.stdout.write(f"  {name}: {shown}")
