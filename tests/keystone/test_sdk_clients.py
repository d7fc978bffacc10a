"""python-glanceclient and openstacksdk on a keystoneauth session: the endpoint from Keystone's
catalog, the token validated by keystonemiddleware."""

from __future__ import annotations

import hashlib
import io
import os

import openstack
import pytest
from glanceclient import Client as GlanceClient
from glanceclient import exc as glance_exc

# openstacksdk 4.22 warns about its own future changes from inside ordinary calls (see
# tests/live/test_openstacksdk.py).
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


def test_glanceclient_creates_uploads_downloads_and_deletes(keystone, unique):
    glance = GlanceClient("2", session=keystone.session("alice"), region_name="RegionOne")
    data = os.urandom(32 * 1024)

    image = glance.images.create(
        name=f"gc-{unique}", disk_format="raw", container_format="bare", visibility="private"
    )
    glance.images.upload(image.id, io.BytesIO(data))
    shown = glance.images.get(image.id)
    downloaded = b"".join(glance.images.data(image.id))
    glance.images.delete(image.id)

    assert shown.status == "active"
    assert shown.owner == keystone.project_id("alpha")
    assert shown.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert downloaded == data
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.get(image.id)


def test_glanceclient_of_another_project_does_not_see_a_private_image(keystone, unique):
    alice = GlanceClient("2", session=keystone.session("alice"), region_name="RegionOne")
    bob = GlanceClient("2", session=keystone.session("bob"), region_name="RegionOne")
    image = alice.images.create(name=f"private-{unique}", visibility="private")

    try:
        bob_ids = {found.id for found in bob.images.list()}
        alice_ids = {found.id for found in alice.images.list()}
    finally:
        alice.images.delete(image.id)

    assert image.id in alice_ids
    assert image.id not in bob_ids


def test_openstacksdk_on_a_keystoneauth_session(keystone, unique):
    conn = openstack.connection.Connection(
        session=keystone.session("bob"), region_name="RegionOne", image_api_version="2"
    )
    data = os.urandom(16 * 1024)

    image = conn.image.create_image(
        name=f"sdk-{unique}", data=data, disk_format="raw", container_format="bare"
    )
    try:
        found = conn.image.get_image(image.id)
        listed = {each.id for each in conn.image.images()}
        downloaded = conn.image.download_image(found).content
    finally:
        conn.image.delete_image(image.id)

    assert found.status == "active"
    assert found.owner_id == keystone.project_id("beta")
    assert image.id in listed
    assert downloaded == data
