"""Try every configured store and say what is wrong with the ones that cannot be used."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from images.storage.stores import all_stores, default_store, multiple_stores, unknown_options


class Command(BaseCommand):
    help = (
        "Connect to each configured store (ENABLED_BACKENDS or the GLANCE_API_CONF file's "
        "enabled_backends) and report whether it can be used; exits 1 if one cannot."
    )
    # The start-up checks refuse to run commands while a store is broken: this one says why.
    requires_system_checks = []

    def handle(self, *args, **options):
        default = default_store().id
        broken = 0
        for store in all_stores().values():
            problem = store.prepare()
            marker = " (default)" if multiple_stores() and store.id == default else ""
            state = "OK" if problem is None else f"UNAVAILABLE: {problem}"
            self.stdout.write(f"{store.id}{marker} [{store.type_name}]: {state}")
            broken += problem is not None
        for store, option in unknown_options():
            self.stdout.write(f"warning: [{store}] {option}: unknown option, ignored")
        stores = len(all_stores())
        if broken:
            raise CommandError(f"{broken} of {stores} store(s) cannot be used.")
        self.stdout.write(f"All {stores} store(s) can be used.")
