"""The Swift store under test: options for the real Swift of ``scripts/swift-aio.sh``, and a
fresh container per test with a client that looks into it directly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from swiftclient import ClientException, Connection

from images.storage.base import ImageStore
from images.storage.stores import driver_for

MB = 1000 * 1024  # glance_store's unit for the large object options


def swift_options(facts: dict[str, str], container: str, **overrides: str) -> dict[str, str]:
    """A store section for the test Swift; small thresholds, so a 12 MiB image has segments."""
    return {
        "type": "swift",
        "swift_store_auth_address": facts["SWIFT_AUTH_URL"],
        "swift_store_auth_version": facts["SWIFT_AUTH_VERSION"],
        "swift_store_user": facts["SWIFT_USER"],
        "swift_store_key": facts["SWIFT_KEY"],
        "swift_store_container": container,
        "swift_store_create_container_on_put": "true",
        "swift_store_large_object_size": "5",
        "swift_store_large_object_chunk_size": "1",
        **overrides,
    }


@dataclass
class SwiftContainer:
    """A container of one test (emptied and removed after it) and a client of its own."""

    facts: dict[str, str]
    name: str
    client: Connection

    def store(self, **overrides: str) -> ImageStore:
        """A swift store ``objects`` writing into this container."""
        options = swift_options(self.facts, self.name, **overrides)
        return driver_for("swift").from_options("objects", options)

    def objects(self, containing: str = "") -> list[str]:
        try:
            _, listing = self.client.get_container(self.name, full_listing=True)
        except ClientException as error:
            if error.http_status == 404:
                return []
            raise
        return sorted(entry["name"] for entry in listing if containing in entry["name"])

    def remove(self) -> None:
        for name in self.objects():
            try:
                self.client.delete_object(self.name, name)
            except ClientException as error:
                if error.http_status != 404:
                    raise
        try:
            self.client.delete_container(self.name)
        except ClientException as error:
            if error.http_status not in (404, 409):  # 409: an abandoned write landed meanwhile
                raise


def fresh_container(request: pytest.FixtureRequest) -> SwiftContainer:
    facts = request.getfixturevalue("swift_service")
    client = Connection(
        authurl=facts["SWIFT_AUTH_URL"],
        user=facts["SWIFT_USER"],
        key=facts["SWIFT_KEY"],
        auth_version=facts["SWIFT_AUTH_VERSION"],
        retries=1,
        timeout=30,
    )
    container = SwiftContainer(facts, f"test-{uuid.uuid4().hex}", client)
    request.addfinalizer(container.remove)
    return container
