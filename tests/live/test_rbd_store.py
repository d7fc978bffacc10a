"""Unchanged clients against a server whose stores come from an operator's glance-api.conf: a
file store and two rbd stores (pools ``images`` and ``images2``) on the real one-node Ceph of
``scripts/ceph-aio.sh``, each result checked in the pool itself with librbd.

glanceclient uploads (chunked, size unknown) and ranged downloads; openstacksdk imports
(glance-direct into RBD), reads the store details, copies RBD → RBD with copy-image, and
deletes: refused while a clone exists, done once it is gone.
"""

from __future__ import annotations

import json
import urllib.request

import glanceclient
import openstack
import pytest
from openstack import exceptions

from tests.live.helpers import make_payload
from tests.storage.rbd_support import Pool, shared_pool

MiB = 1024 * 1024
CONF = """\
[DEFAULT]
enabled_backends = fast:file, ceph:rbd, ceph2:rbd
show_image_direct_url = true
show_multiple_locations = true

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {data_dir}/fast-rbd

[ceph]
store_description = Ceph RBD
rbd_store_pool = {CEPH_POOL}
rbd_store_user = {CEPH_USER}
rbd_store_ceph_conf = {CEPH_CONF}
rbd_store_chunk_size = 4
rados_connect_timeout = 10
rbd_thin_provisioning = true

[ceph2]
rbd_store_pool = {CEPH_SECOND_POOL}
rbd_store_user = {CEPH_USER}
rbd_store_ceph_conf = {CEPH_CONF}
"""

# openstacksdk 4.22 warns about its own future removals from inside ordinary calls
# (tests/live/test_openstacksdk.py).
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*")


@pytest.fixture(scope="module")
def pools():
    first = shared_pool()
    second = Pool({**first.service, "CEPH_POOL": first.service["CEPH_SECOND_POOL"]})
    before = (set(first.names()), set(second.names()))
    yield first, second
    first.remove_new(before[0])
    second.remove_new(before[1])


@pytest.fixture(scope="module")
def service(extra_live_service, live_service, pools, tmp_path_factory):
    conf = tmp_path_factory.mktemp("glance-conf-rbd") / "glance-api.conf"
    conf.write_text(CONF.format(data_dir=live_service.data_dir, **pools[0].service))
    return extra_live_service(GLANCE_API_CONF=str(conf), IMPORT_JOBS_SYNC="1")


@pytest.fixture
def client(service):
    return glanceclient.Client("2", endpoint=service.url, token=service.user.token)


def connect(service, account) -> openstack.connection.Connection:
    return openstack.connection.Connection(
        auth_type="admin_token",
        auth={"endpoint": service.url, "token": account.token},
        image_endpoint_override=service.url,
    )


@pytest.fixture
def sdk(service):
    with connect(service, service.user) as connection:
        yield connection


@pytest.fixture
def operator_sdk(service):
    with connect(service, service.operator) as connection:
        yield connection


def ranged(service, image_id: str, start: int, end: int) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{service.url}/v2/images/{image_id}/file",
        headers={"X-Auth-Token": service.user.token, "Range": f"bytes={start}-{end}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def test_glanceclient_chunked_upload_to_rbd_is_an_rbd_image_of_the_exact_size(
    service, client, pools, tmp_path, unique
):
    pool = pools[0]
    payload = make_payload(tmp_path, 9 * MiB + 7)
    image = client.images.create(name=f"rbd-{unique}", disk_format="raw", container_format="bare")

    with payload.path.open("rb") as data:  # chunked: glanceclient never sends a length
        client.images.upload(image["id"], data, backend="ceph")

    shown = client.images.get(image["id"])
    fsid = pool.service["CEPH_FSID"]
    assert (shown["status"], shown["stores"], shown["size"]) == ("active", "ceph", 9 * MiB + 7)
    assert shown["checksum"] == payload.md5
    assert shown["direct_url"] == f"rbd://{fsid}/images/{image['id']}/snap"
    assert pool.names(image["id"]) == [image["id"]]
    with pool.image(image["id"]) as stored:
        assert stored.size() == len(payload.data)
        assert stored.stat()["obj_size"] == 4 * MiB
        assert stored.is_protected_snap("snap")
    assert b"".join(client.images.data(image["id"])) == payload.data
    assert ranged(service, image["id"], 4 * MiB - 3, 4 * MiB + 2) == (
        206,
        payload.data[4 * MiB - 3 : 4 * MiB + 3],
    )


def test_openstacksdk_imports_into_rbd_copies_to_the_second_pool_and_deletes(
    service, sdk, operator_sdk, pools, tmp_path, unique
):
    first, second = pools
    payload = make_payload(tmp_path, 5 * MiB + 1)
    details = {store.id: store for store in operator_sdk.image.stores(details=True)}
    assert details["ceph"].description == "Ceph RBD"  # the SDK's Store has no "type"
    assert details["ceph"].properties == {
        "chunk_size": 4 * MiB,
        "pool": "images",
        "thin_provisioning": True,
        "fsid": first.service["CEPH_FSID"],
    }

    image = sdk.image.create_image(
        name=f"sdk-rbd-{unique}",
        data=payload.data,
        disk_format="raw",
        container_format="bare",
        use_import=True,  # glance-direct: staged, then imported into the store
        stores=["ceph"],
        wait=True,
    )
    image_id = image.id
    as_operator = operator_sdk.image.get_image(image_id)
    operator_sdk.image.import_image(as_operator, method="copy-image", stores=["ceph2"])

    shown = sdk.image.get_image(image_id)
    stores = sorted(shown.properties["stores"].split(","))  # the SDK files it as a property
    assert (shown.status, stores) == ("active", ["ceph", "ceph2"])
    assert shown.checksum == payload.md5
    with second.image(image_id, snapshot="snap") as copy:
        assert copy.read(0, len(payload.data)) == payload.data
    downloaded = sdk.image.download_image(shown, stream=True)
    assert b"".join(downloaded.iter_content(MiB)) == payload.data

    first.clone(image_id, f"{image_id}-clone")
    with pytest.raises(exceptions.ConflictException):
        sdk.image.delete_image(image_id)
    assert sdk.image.get_image(image_id).status == "active"
    assert first.names(image_id) == [image_id, f"{image_id}-clone"]
    assert second.names(image_id) == [image_id]

    first.remove(f"{image_id}-clone")
    sdk.image.delete_image(image_id)

    assert first.names(image_id) == []
    assert second.names(image_id) == []
    with pytest.raises(exceptions.NotFoundException):
        sdk.image.get_image(image_id)


def test_stores_of_the_glance_file_are_offered_with_their_descriptions(service):
    request = urllib.request.Request(
        f"{service.url}/v2/info/stores", headers={"X-Auth-Token": service.user.token}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        stores = {entry["id"]: entry for entry in json.loads(response.read())["stores"]}

    assert stores["ceph"]["description"] == "Ceph RBD"
    assert stores["fast"]["default"] == "true"
    assert set(stores) == {"fast", "ceph", "ceph2"}
