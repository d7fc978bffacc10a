"""The staging area in an object store (``[os_glance_staging_store] store_type = swift|s3``),
through the Image API, against the real Swift and its S3 API (``scripts/swift-aio.sh``).

"No byte through the service" is measured where the bytes would go: the Swift proxy's access
log (``<SWIFT_AIO_DIR>/log/proxy.log``) counts the bytes every client request sent and
received. Staging a 12 MiB image shows there as 12 MiB received; an import copied on the
server's side shows as a few KiB of manifests and listings, while a streamed one would show
twice the image.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.template.defaultfilters import filesizeformat
from django.test import Client

from images.models import Image, StagedData
from images.storage import staging
from imageservice import glance_conf
from imageservice.checks import check_settings
from tasks.models import Task
from tests.storage.s3_backend import Bucket, fresh_bucket_name, s3_options, s3_service
from tests.storage.swift_support import fresh_container, swift_options
from tests.support import JSON, reloaded

MiB = 1024 * 1024
DATA = os.urandom(12 * MiB + 5)
OCTET = "application/octet-stream"
GLANCE_DIRECT = {"method": {"name": "glance-direct"}}
# Manifests, listings and small requests: far below one image.
CONTROL_BYTES = 256 * 1024


@dataclass
class ProxyLog:
    """The access log of one Swift proxy, read from a mark on."""

    path: Path
    mark: int = 0

    def start(self) -> None:
        self.mark = self.path.stat().st_size

    def client_bytes(self, *names: str) -> int:
        """Bytes received plus sent by client requests (not Swift's own subrequests) whose
        path names one of ``names`` (containers or buckets), since the mark."""
        text = self._settled()
        total = 0
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 18 or fields[0] != "proxy-server:" or fields[17] != "-":
                continue
            if any(f"/{name}" in fields[5] for name in names):
                total += sum(int(value) for value in fields[11:13] if value.isdigit())
        return total

    def _settled(self) -> str:
        # The proxy writes a request's line just after its response: wait until it is quiet.
        size = -1
        while size != self.path.stat().st_size:
            size = self.path.stat().st_size
            time.sleep(0.3)
        with self.path.open("rb") as log:
            log.seek(self.mark)
            return log.read().decode(errors="replace")


@dataclass
class ObjectStaging:
    """Staging in one container or bucket and the image store ``objects`` in another, on the
    same service (so the import can copy between them), seen directly in the backend."""

    kind: str
    staging_place: str
    images_place: str
    staged_names: callable = field(repr=False)
    image_names: callable = field(repr=False)
    log: ProxyLog = field(repr=False)


def _swift_staging(request, settings) -> ObjectStaging:
    images, staged = fresh_container(request), fresh_container(request)
    settings.ENABLED_BACKENDS = {"objects": swift_options(images.facts, images.name)}
    settings.STAGING_STORE_TYPE = "swift"
    options = swift_options(staged.facts, staged.name)
    settings.STAGING_STORE_OPTIONS = {k: v for k, v in options.items() if k != "type"}
    log = ProxyLog(Path(images.facts["SWIFT_AIO_DIR"]) / "log" / "proxy.log")
    return ObjectStaging("swift", staged.name, images.name, staged.objects, images.objects, log)


def _s3_staging(request, settings) -> ObjectStaging:
    service = s3_service()
    images, staged = Bucket(service, fresh_bucket_name()), Bucket(service, fresh_bucket_name())
    request.addfinalizer(images.remove)
    request.addfinalizer(staged.remove)
    settings.ENABLED_BACKENDS = {"objects": s3_options(service, images.name)}
    settings.STAGING_STORE_TYPE = "s3"
    options = s3_options(service, staged.name)
    settings.STAGING_STORE_OPTIONS = {k: v for k, v in options.items() if k != "type"}
    log = ProxyLog(Path(service["SWIFT_AIO_DIR"]) / "log" / "proxy.log")

    def names(bucket: Bucket):
        return lambda containing="": [e for e in bucket.leftovers(containing) if containing in e]

    return ObjectStaging("s3", staged.name, images.name, names(staged), names(images), log)


@pytest.fixture(params=["swift", "s3"])
def object_staging(request, settings) -> ObjectStaging:
    build = {"swift": _swift_staging, "s3": _s3_staging}[request.param]
    built = build(request, settings)
    assert staging.ensure_staging_root() is None
    return built


@pytest.fixture
def queued(make_image) -> Image:
    return make_image(disk_format="raw", container_format="bare")


def stage(persona, image: Image, data: bytes = DATA):
    return persona.client().put(
        f"/v2/images/{image.id}/stage", data=data, content_type=OCTET, HTTP_ACCEPT=JSON
    )


def start_import(persona, image: Image, body: dict = GLANCE_DIRECT):
    return persona.client().post(
        f"/v2/images/{image.id}/import",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT=JSON,
    )


def download(persona, image: Image) -> bytes:
    response = persona.client().get(f"/v2/images/{image.id}/file")
    assert response.status_code == 200
    # Read to its end, the test client closes the response itself (and once only: a second
    # close would end the test's database connection).
    return b"".join(response.streaming_content)


def test_stage_puts_the_data_into_the_staging_store_not_on_local_disk(
    owner, queued, object_staging, data_dir
):
    object_staging.log.start()

    response = stage(owner, queued)

    assert response.status_code == 204
    assert reloaded(queued).status == "uploading"
    assert StagedData.objects.get(image=queued).os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert str(queued.id) in object_staging.staged_names(str(queued.id))
    assert not (data_dir / "staging").exists() or not any((data_dir / "staging").iterdir())
    # The measure sees the stream: the image went into the staging place once.
    assert object_staging.log.client_bytes(object_staging.staging_place) >= len(DATA)


def test_import_copies_the_staged_data_on_the_server_side(owner, queued, object_staging):
    assert stage(owner, queued).status_code == 204
    object_staging.log.start()

    response = start_import(owner, queued)

    assert response.status_code == 202
    image = reloaded(queued)
    assert (image.status, image.size) == ("active", len(DATA))
    assert image.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert image.checksum == hashlib.md5(DATA).hexdigest()
    moved = object_staging.log.client_bytes(
        object_staging.staging_place, object_staging.images_place
    )
    assert moved < CONTROL_BYTES, f"{moved} bytes passed through the service"
    assert download(owner, image) == DATA
    assert object_staging.staged_names(str(image.id)) == []
    assert str(image.id) in object_staging.image_names(str(image.id))
    assert not StagedData.objects.filter(image=image).exists()
    assert Task.objects.get(image_id=image.id).status == "success"


def test_import_of_a_small_image_is_one_server_side_copy(owner, queued, object_staging):
    small = os.urandom(300 * 1024)
    assert stage(owner, queued, small).status_code == 204

    assert start_import(owner, queued).status_code == 202

    image = reloaded(queued)
    assert (image.status, image.size) == ("active", len(small))
    assert download(owner, image) == small
    assert object_staging.staged_names(str(image.id)) == []


def test_failed_import_keeps_the_staged_data_and_a_retry_activates(
    owner, queued, object_staging, settings
):
    assert stage(owner, queued).status_code == 204
    working = settings.ENABLED_BACKENDS["objects"]
    key = "swift_store_key" if object_staging.kind == "swift" else "s3_store_secret_key"
    settings.ENABLED_BACKENDS = {"objects": {**working, key: "wrong"}}

    response = start_import(owner, queued)
    assert response.status_code == 202, response.content

    image = reloaded(queued)
    assert image.status == "uploading"
    task = Task.objects.get(image_id=image.id)
    assert task.status == "failure" and "objects" in task.message
    assert str(image.id) in object_staging.staged_names(str(image.id))
    assert StagedData.objects.filter(image=image).exists()
    settings.ENABLED_BACKENDS = {"objects": working}

    assert start_import(owner, queued).status_code == 202

    image = reloaded(queued)
    assert (image.status, image.size) == ("active", len(DATA))
    assert download(owner, image) == DATA
    assert object_staging.staged_names(str(image.id)) == []


def test_plugin_that_changes_the_data_gets_a_local_copy_and_the_result_is_written(
    owner, queued, object_staging, settings, data_dir
):
    settings.IMAGE_IMPORT_PLUGINS = ["image_decompression"]
    assert stage(owner, queued, gzip.compress(DATA, compresslevel=1)).status_code == 204

    assert start_import(owner, queued).status_code == 202

    image = reloaded(queued)
    task = Task.objects.get(image_id=image.id)
    assert (image.status, image.size, task.message) == ("active", len(DATA), "")
    assert image.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert download(owner, image) == DATA
    assert object_staging.staged_names(str(image.id)) == []
    assert list((data_dir / "import-work").iterdir()) == []  # the local copy is gone


def test_image_delete_removes_the_staged_object(owner, queued, object_staging):
    assert stage(owner, queued).status_code == 204

    response = owner.client().delete(f"/v2/images/{queued.id}")

    assert response.status_code == 204
    assert object_staging.staged_names(str(queued.id)) == []


def test_cleanup_staging_removes_the_staged_object_of_a_deleted_image(
    owner, queued, object_staging
):
    assert stage(owner, queued).status_code == 204
    # A node that deleted the image while the staging store was unreachable left it.
    Image.objects.filter(pk=queued.pk).update(deleted=True)

    call_command("cleanup_staging", verbosity=0)

    assert object_staging.staged_names(str(queued.id)) == []
    assert not StagedData.objects.filter(image_id=queued.id).exists()


def test_cleanup_staging_sweeps_what_a_dead_staging_write_left(queued, object_staging):
    # A writer killed in the middle of PUT /stage: segments or parts, never committed.
    write = staging.staging_store().open_write(str(queued.id), "deadbeef" * 4)
    write.write(os.urandom(MiB))  # S3: the upload exists, its part is still being filled
    if object_staging.kind == "swift":
        write.finish()  # its segments are in Swift, as when the process died after them
    assert object_staging.staged_names(str(queued.id)) != []

    call_command("cleanup_staging", verbosity=0)

    assert object_staging.staged_names(str(queued.id)) == []


def test_staging_in_the_images_container_is_refused(settings, object_staging):
    settings.STAGING_STORE_OPTIONS = {
        key: value for key, value in settings.ENABLED_BACKENDS["objects"].items() if key != "type"
    }

    problem = staging.ensure_staging_root()

    assert "it is the container or bucket of store objects" in problem


def test_import_into_a_store_of_another_type_streams_the_staged_data(
    owner, queued, request, settings, data_dir
):
    staged = fresh_container(request)
    settings.STAGING_STORE_TYPE = "swift"
    options = swift_options(staged.facts, staged.name)
    settings.STAGING_STORE_OPTIONS = {k: v for k, v in options.items() if k != "type"}
    assert stage(owner, queued).status_code == 204

    assert start_import(owner, queued).status_code == 202

    image = reloaded(queued)
    assert (image.status, image.size) == ("active", len(DATA))
    assert (data_dir / "images" / str(image.id)).read_bytes() == DATA  # the single file store
    assert staged.objects(str(image.id)) == []


def test_copy_image_between_two_swift_stores_of_one_account_is_server_side(
    owner, admin, make_image, request, settings
):
    first, second = fresh_container(request), fresh_container(request)
    settings.ENABLED_BACKENDS = {
        "first": swift_options(first.facts, first.name),
        "second": swift_options(second.facts, second.name),
    }
    image = make_image(disk_format="raw", container_format="bare")
    response = owner.client().put(
        f"/v2/images/{image.id}/file",
        data=DATA,
        content_type=OCTET,
        HTTP_X_IMAGE_META_STORE="first",
    )
    assert response.status_code == 204
    log = ProxyLog(Path(first.facts["SWIFT_AIO_DIR"]) / "log" / "proxy.log")
    log.start()

    # copy-image is the operator's (Glance's default policy).
    response = start_import(admin, image, {"method": {"name": "copy-image"}, "stores": ["second"]})

    assert response.status_code == 202
    image = reloaded(image)
    assert sorted(image.locations.values_list("store", flat=True)) == ["first", "second"]
    assert log.client_bytes(first.name, second.name) < CONTROL_BYTES
    _, copied = second.client.get_object(second.name, str(image.id))
    assert copied == DATA


def test_staging_store_options_come_from_the_glance_file_and_the_environment(tmp_path):
    path = tmp_path / "glance-api.conf"
    path.write_text(
        "[os_glance_staging_store]\nstore_type = swift\nswift_store_container = staging\n"
    )

    options = glance_conf.staging_store_options(
        glance_conf.load(str(path)), {"STAGING_STORE_SWIFT_STORE_KEY": "secret"}
    )

    assert options == {
        "store_type": "swift",
        "swift_store_container": "staging",
        "swift_store_key": "secret",
    }
    assert glance_conf.staging_store_options(
        glance_conf.GlanceConf(), {"STAGING_STORE_TYPE": "s3"}
    ) == {"store_type": "s3"}


@pytest.mark.parametrize("store_type", ["rbd", "cinder"])
def test_a_staging_store_type_other_than_file_swift_s3_is_a_problem(settings, store_type):
    # rbd is an image store type, cinder none of ours: neither can hold staged data.
    settings.STAGING_STORE_TYPE = store_type
    settings.STAGING_STORE_OPTIONS = {}

    assert "staging takes file, swift or s3" in staging.ensure_staging_root()


def test_a_misspelt_staging_store_option_is_a_start_up_warning(settings, request):
    staged = fresh_container(request)
    settings.STAGING_STORE_TYPE = "swift"
    options = swift_options(staged.facts, staged.name)
    settings.STAGING_STORE_OPTIONS = {
        **{k: v for k, v in options.items() if k != "type"},
        "swift_store_containr": "typo",
    }

    messages = check_settings()

    assert [(m.id, m.msg) for m in messages] == [
        (
            "imageservice.W007",
            "[os_glance_staging_store] swift_store_containr: unknown option, ignored.",
        )
    ]


def test_staging_page_lists_the_staged_objects_and_the_orphans(
    admin, owner, queued, make_image, object_staging
):
    assert stage(owner, queued).status_code == 204
    orphan = make_image(disk_format="raw", container_format="bare")
    assert stage(owner, orphan, b"orphan").status_code == 204
    Image.objects.filter(pk=orphan.pk).update(deleted=True)
    console = Client()
    console.force_login(admin.user)

    page = console.get("/admin/staging/").content.decode()

    assert f"2 file(s), {filesizeformat(len(DATA) + 6)} in 2 entries" in page
    assert "1 orphan(s), 6\xa0bytes" in page
    assert f"Would remove staged {orphan.id} (6 bytes): image deleted" in page
