"""S3 stores under test: a fresh bucket of the real Swift's S3 API per test, looked at through
S3 and through Swift's own API, where the parts of multipart uploads are kept."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from functools import cache, cached_property
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings

from images.storage.s3 import S3Store
from images.storage.stores import driver_for

SWIFT_AIO = Path(settings.BASE_DIR) / "scripts" / "swift-aio.sh"
# A Swift of the s3 tests' own, beside the one other stores' tests share (scripts/README.md:
# side-by-side instances): the s3 fault test stops its proxy without disturbing them, and a
# fault test of theirs never takes the s3 tests' store away.
S3_SWIFT = {
    "SWIFT_AIO_DIR": os.path.join(tempfile.gettempdir(), "imageservice-swift-s3"),
    "SWIFT_AIO_PORT": "8090",
    "SWIFT_AIO_OBJECT_PORT": "6210",
    "SWIFT_AIO_CONTAINER_PORT": "6211",
    "SWIFT_AIO_ACCOUNT_PORT": "6212",
    "SWIFT_AIO_MEMCACHED_PORT": "11213",
}


def swift_aio(*arguments: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``scripts/swift-aio.sh`` for the s3 tests' Swift."""
    return subprocess.run(
        [str(SWIFT_AIO), *arguments],
        env={**os.environ, **S3_SWIFT},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@cache
def s3_service() -> dict[str, str]:
    """The s3 tests' Swift, started (installed on a fresh machine) on first use and left
    running, as the shared one; ``status env`` facts (S3_ENDPOINT, SWIFT_AUTH_URL …)."""
    started = swift_aio("start", timeout=600)
    assert started.returncode == 0, f"swift-aio.sh start failed:\n{started.stdout}{started.stderr}"
    facts = swift_aio("status", "env")
    return dict(line.split("=", 1) for line in facts.stdout.splitlines() if "=" in line)


def s3_options(service: dict[str, str], bucket: str, **overrides: str) -> dict[str, str]:
    """glance_store options of an s3 store on ``service``; parts of 5 MB, so the contract
    tests' 12 MiB image is three parts."""
    return {
        "type": "s3",
        "s3_store_host": service["S3_ENDPOINT"],
        "s3_store_access_key": service["S3_ACCESS_KEY"],
        "s3_store_secret_key": service["S3_SECRET_KEY"],
        "s3_store_region_name": service["S3_REGION"],
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": "true",
        "s3_store_large_object_size": "5",
        "s3_store_large_object_chunk_size": "5",
        **overrides,
    }


def fresh_bucket_name() -> str:
    return f"t-{uuid.uuid4().hex}"


class Bucket:
    """A bucket of the Swift under test, as it really is (not as a store reports it)."""

    def __init__(self, service: dict[str, str], name: str):
        self.service = service
        self.name = name

    @cached_property
    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.service["S3_ENDPOINT"],
            region_name=self.service["S3_REGION"],
            aws_access_key_id=self.service["S3_ACCESS_KEY"],
            aws_secret_access_key=self.service["S3_SECRET_KEY"],
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def store(self, store_id: str = "objects", **overrides: str) -> S3Store:
        return driver_for("s3").from_options(
            store_id, s3_options(self.service, self.name, **overrides)
        )

    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.name)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise
        return True

    def objects(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def uploads(self) -> list[str]:
        """``"<key> upload <UploadId>"`` for each multipart upload in progress."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.name)
        return [
            f"{upload['Key']} upload {upload['UploadId']}"
            for page in pages
            for upload in page.get("Uploads", [])
        ]

    def segments(self) -> list[str]:
        """What Swift keeps of parts, in the bucket's ``+segments`` container."""
        login = requests.get(
            self.service["SWIFT_AUTH_URL"],
            headers={
                "X-Auth-User": self.service["SWIFT_USER"],
                "X-Auth-Key": self.service["SWIFT_KEY"],
            },
            timeout=30,
        )
        login.raise_for_status()
        container = f"{self.name}+segments"
        listing = requests.get(
            f"{login.headers['X-Storage-Url']}/{container}",
            headers={"X-Auth-Token": login.headers["X-Auth-Token"]},
            timeout=30,
        )
        if listing.status_code == 404:
            return []
        listing.raise_for_status()
        return [f"{container}/{name}" for name in listing.text.splitlines()]

    def leftovers(self, image_id: str) -> list[str]:
        """Objects, uploads in progress and stored parts of the image."""
        found = self.objects() + self.uploads() + self.segments()
        return sorted(entry for entry in found if image_id in entry)

    def remove(self) -> None:
        """Empty and delete the bucket (its parts go with it)."""
        try:
            for upload in self.uploads():
                key, _, upload_id = upload.partition(" upload ")
                self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
            for key in self.objects():
                self.client.delete_object(Bucket=self.name, Key=key)
            self.client.delete_bucket(Bucket=self.name)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                raise
