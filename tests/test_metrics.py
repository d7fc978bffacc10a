"""GET /metrics: counters after known traffic (exact increments: the registry lives as long as
the test process), the figures read from the database, and who may scrape."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client.parser import text_string_to_metric_families

from images.models import Image, StagedData
from images.storage.stores import default_store
from tasks.models import Task

pytestmark = pytest.mark.django_db(transaction=True)

OCTET = "application/octet-stream"
DATA = b"counted bytes " * 1000


def scrape(client: Client | None = None, **headers: str) -> dict[tuple, float]:
    """Every sample of /metrics as ``(name, sorted labels) → value``."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def increase(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def create(persona, **body) -> dict:
    body = {"name": "counted", "disk_format": "raw", "container_format": "bare", **body}
    response = persona.client().post("/v2/images", body, format="json")
    assert response.status_code == 201
    return response.json()


def test_requests_counted_by_route_method_and_status(owner, outsider):
    before = scrape()
    first = create(owner)
    create(owner)
    owner.client().get(f"/v2/images/{first['id']}")
    outsider.client().get(f"/v2/images/{first['id']}")
    owner.client().get("/v2/images/not-there/file")

    after = scrape()

    requests = "imageservice_http_requests_total"
    image_route = "v2/images/<str:image_id>"
    assert increase(before, after, requests, route="v2/images", method="POST", status="201") == 2
    assert increase(before, after, requests, route=image_route, method="GET", status="200") == 1
    assert increase(before, after, requests, route=image_route, method="GET", status="404") == 1
    file_route = "v2/images/<str:image_id>/file"
    assert increase(before, after, requests, route=file_route, method="GET", status="404") == 1
    assert increase(before, after, requests, route="metrics", method="GET", status="200") == 1
    latency = "imageservice_http_request_duration_seconds_count"
    assert increase(before, after, latency, route=image_route, method="GET") == 2
    assert not [key for key in after if first["id"] in str(key)]  # never the raw path


def test_uploads_and_bytes_counted_by_store_and_outcome(owner):
    before = scrape()
    good = create(owner)
    bad = create(owner, disk_format="qcow2")
    owner.client().put(f"/v2/images/{good['id']}/file", DATA, content_type=OCTET)
    owner.client().put(f"/v2/images/{bad['id']}/file", DATA, content_type=OCTET)
    downloaded = b"".join(owner.client().get(f"/v2/images/{good['id']}/file").streaming_content)

    after = scrape()

    assert downloaded == DATA
    uploads = "imageservice_uploads_total"
    assert increase(before, after, uploads, method="file", outcome="success") == 1
    assert increase(before, after, uploads, method="file", outcome="failure") == 1
    duration = "imageservice_upload_duration_seconds_count"
    assert increase(before, after, duration, method="file", outcome="success") == 1
    assert increase(
        before, after, "imageservice_store_bytes_in_total", store=default_store().id
    ) == len(DATA)
    assert increase(
        before, after, "imageservice_store_bytes_out_total", store=default_store().id
    ) == len(DATA)
    events = "imageservice_events_total"
    assert increase(before, after, events, action="image.create", outcome="success") == 2
    assert increase(before, after, events, action="image.upload", outcome="failure") == 1


def test_imports_counted_by_method_and_outcome(owner):
    before = scrape()
    image = create(owner)
    owner.client().put(f"/v2/images/{image['id']}/stage", DATA, content_type=OCTET)
    owner.client().post(
        f"/v2/images/{image['id']}/import", {"method": {"name": "glance-direct"}}, format="json"
    )
    failing = create(owner)
    owner.client().put(f"/v2/images/{failing['id']}/stage", DATA, content_type=OCTET)
    StagedData.objects.filter(image_id=failing["id"]).delete()
    owner.client().post(
        f"/v2/images/{failing['id']}/import", {"method": {"name": "glance-direct"}}, format="json"
    )

    after = scrape()

    imports = "imageservice_imports_total"
    assert increase(before, after, imports, method="glance-direct", outcome="success") == 1
    assert increase(before, after, imports, method="glance-direct", outcome="failure") == 1
    duration = "imageservice_import_duration_seconds_count"
    assert increase(before, after, duration, method="glance-direct", outcome="success") == 1
    assert (
        increase(before, after, "imageservice_uploads_total", method="stage", outcome="success")
        == 2
    )
    assert increase(before, after, "imageservice_store_bytes_in_total", store="staging") == 2 * len(
        DATA
    )
    assert increase(
        before, after, "imageservice_store_bytes_in_total", store=default_store().id
    ) == len(DATA)


def test_state_figures_read_from_the_database(make_image, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.UPLOAD_STALE_SECONDS + 60)
    stuck = make_image(status="saving")
    make_image(status="saving")  # still beating
    waiting = make_image(status="uploading")
    StagedData.objects.create(
        image=waiting, size=1234, checksum="c", os_hash_algo="sha512", os_hash_value="v"
    )
    Image.objects.filter(pk__in=[stuck.pk, waiting.pk]).update(updated_at=long_ago)
    make_image(status="active", deleted=True)
    Task.objects.create(
        owner="p", status="processing", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    Task.objects.create(owner="p", status="processing", heartbeat_at=timezone.now())

    samples = scrape()

    assert value(samples, "imageservice_stuck_uploads") == 1
    assert value(samples, "imageservice_stuck_imports") == 1
    assert value(samples, "imageservice_staging_bytes") == 1234
    assert value(samples, "imageservice_images", status="saving") == 2
    assert value(samples, "imageservice_images", status="uploading") == 1
    assert value(samples, "imageservice_images", status="active") == 0


def test_job_queue_depth_counts_waiting_jobs(db):
    broker = get_broker()
    broker.purge_queue()
    try:
        for job in ("first", "second"):
            broker.enqueue(job)

        samples = scrape()
    finally:
        broker.purge_queue()

    assert value(samples, "imageservice_job_queue_depth") == 2


def test_scrape_refused_from_other_addresses_without_token(db):
    response = Client(REMOTE_ADDR="192.0.2.7").get("/metrics")

    assert response.status_code == 403


def test_scrape_allowed_from_configured_network(db, settings):
    settings.METRICS_ALLOWED_ADDRESSES = ["192.0.2.0/24"]

    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_scrape_with_bearer_token_from_anywhere(db, settings):
    settings.METRICS_TOKEN = "s3cret"
    client = Client(REMOTE_ADDR="198.51.100.1")

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics").status_code == 403


def test_scrape_is_get_only(db):
    assert Client().post("/metrics").status_code == 405


def test_unknown_methods_share_one_series(db):
    before = scrape()
    Client().generic("BREW", "/versions")

    after = scrape()

    name = "imageservice_http_requests_total"
    changed = {key for key in after if key[0] == name and after[key] != before.get(key, 0)}
    assert {dict(labels)["method"] for _, labels in changed} == {"other", "GET"}
    assert json.dumps(sorted(changed))  # labels are plain strings
