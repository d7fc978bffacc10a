"""/metrics of a live gunicorn with 2 worker processes in multiprocess mode: whichever worker
answers a scrape, the counters are the sum over both, exact."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

HEALTHCHECKS = 40
CREATES = 6


@pytest.fixture(scope="module")
def metrics_service(extra_live_service, tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics")
    return extra_live_service(PROMETHEUS_MULTIPROC_DIR=str(directory)), directory


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def create_image(service, name: str) -> int:
    request = urllib.request.Request(
        f"{service.url}/v2/images",
        data=json.dumps({"name": name}).encode(),
        headers={"X-Auth-Token": service.user.token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def scrape(service) -> dict[tuple, float]:
    status, body = get(f"{service.url}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def counter(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_are_summed_over_both_workers(metrics_service, unique):
    service, directory = metrics_service
    # /healthcheck, not /versions: start-up polled /versions, and a poll the client gave up on
    # may still be answered (and counted) after any baseline.
    baseline = scrape(service)
    # Concurrent clients: a sync worker serves one request at a time, so both take a share.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda _: get(f"{service.url}/healthcheck")[0], range(HEALTHCHECKS))
        )
        created = list(pool.map(lambda n: create_image(service, f"m-{unique}-{n}"), range(CREATES)))
    scrapes = [scrape(service) for _ in range(6)]

    assert statuses == [200] * HEALTHCHECKS
    assert created == [201] * CREATES
    requests = "imageservice_http_requests_total"
    events = "imageservice_events_total"

    def increase(samples: dict, name: str, **labels: str) -> float:
        return counter(samples, name, **labels) - counter(baseline, name, **labels)

    for number, samples in enumerate(scrapes, start=1):
        assert increase(samples, requests, route="healthcheck", method="GET", status="200") == (
            HEALTHCHECKS
        )
        assert increase(samples, requests, route="v2/images", method="POST", status="201") == (
            CREATES
        )
        # The baseline and the scrapes before this one, each counted once it was answered.
        assert increase(samples, requests, route="metrics", method="GET", status="200") == number
        assert increase(samples, events, action="image.create", outcome="success") == CREATES
    pids = {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}
    assert len(pids) == 2, f"counter files of {sorted(pids)}: one worker served everything"


def test_scrape_refused_with_wrong_token_from_allowed_nowhere(extra_live_service):
    service = extra_live_service(METRICS_ALLOWED_ADDRESSES="", METRICS_TOKEN="live-secret")

    status, _ = get(f"{service.url}/metrics", {"Authorization": "Bearer live-secret"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(f"{service.url}/metrics", {"Authorization": "Bearer other"})

    assert (status, refused.value.code) == (200, 403)
