"""The six /v2/schemas documents compared with Glance's api-ref samples.

The samples (kept in tests/data/glance-samples) are older than the Glance code; each difference
asserted here is one a live Glance serves too (reference §3.1, §11).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import warlock
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from glanceclient.v2.schemas import Schema, SchemaBasedModel

from images.schemas import (
    IMAGE_BASE_PROPERTIES,
    READ_ONLY_IMAGE_PROPERTIES,
    image_schema,
    images_schema,
    member_schema,
    members_schema,
    task_schema,
    tasks_schema,
)

SAMPLES = Path(__file__).parent / "data" / "glance-samples"
TASK_FIELDS_BEYOND_SAMPLE = {
    "image_id": {"description": "Image associated with the task", "type": "string"},
    "request_id": {"description": "Human-readable informative request-id", "type": "string"},
    "user_id": {"description": "User associated with the task", "type": "string"},
}


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def _make_sample_image_schema_live(image: dict[str, Any]) -> None:
    """Apply what a live Glance (with its shipped schema-image.json) serves beyond the sample."""
    props = image["properties"]
    props["visibility"]["enum"] = ["community", "public", "private", "shared"]
    props["status"]["enum"] = [
        "queued",
        "saving",
        "active",
        "killed",
        "deleted",
        "uploading",
        "importing",
        "pending_delete",
        "deactivated",
    ]
    props["stores"] = {
        "type": "string",
        "readOnly": True,
        "description": "Store in which image data resides.  Only present when the operator has "
        "enabled multiple stores.  May be a comma-separated list of store identifiers.",
    }
    props["locations"]["items"]["properties"]["validation_data"]["description"] = (
        "Values to be used to populate the corresponding image properties. If the image status "
        "is not 'queued', values must exactly match those already contained in the image "
        "properties."
    )
    props["os_version"]["description"] = "Operating system version as specified by the distributor."
    props.update(_custom_properties_beyond_sample())


def _custom_properties_beyond_sample() -> dict[str, Any]:
    return {
        "description": {
            "description": "A human-readable string describing this image.",
            "type": "string",
            "is_base": False,
        },
        "cinder_encryption_key_id": {
            "description": "Identifier in the OpenStack Key Management Service for the "
            "encryption key for the Block Storage Service to use when mounting a volume created "
            "from this image",
            "type": "string",
            "is_base": False,
        },
        "cinder_encryption_key_deletion_policy": {
            "description": "States the condition under which the Image Service will delete the "
            "object associated with the 'cinder_encryption_key_id' image property.  If this "
            "property is missing, the Image Service will take no action",
            "type": "string",
            "enum": ["on_image_deletion", "do_not_delete"],
            "is_base": False,
        },
    }


def _glanceclient_image_model() -> type[SchemaBasedModel]:
    # The same model glanceclient's images.Controller.model builds from the downloaded schema.
    return warlock.model_factory(Schema(image_schema()).raw(), base_class=SchemaBasedModel)


def _image_body() -> dict[str, Any]:
    body = _sample("image-show-response.json")
    # glanceclient drops "self" before building the model (it clashes with __init__'s self).
    del body["self"]
    return body


def test_image_schema_equals_sample_plus_live_glance_differences():
    expected = _sample("schemas-image-show-response.json")
    _make_sample_image_schema_live(expected)

    assert image_schema() == expected


def test_images_schema_equals_sample_plus_live_glance_differences():
    expected = _sample("schemas-images-list-response.json")
    items = expected["properties"]["images"]["items"]
    # This sample is older still: its locations items predate validation_data.
    items["properties"]["locations"]["items"]["properties"]["validation_data"] = _sample(
        "schemas-image-show-response.json"
    )["properties"]["locations"]["items"]["properties"]["validation_data"]
    _make_sample_image_schema_live(items)

    assert images_schema() == expected


def test_images_schema_items_equal_image_schema():
    assert images_schema()["properties"]["images"]["items"] == image_schema()


def test_member_schema_equals_sample():
    assert member_schema() == _sample("schemas-image-member-show-response.json")


def test_members_schema_equals_sample():
    assert members_schema() == _sample("schemas-image-members-list-response.json")


def test_task_schema_equals_sample_except_code_only_fields():
    schema = task_schema()

    # Reference §11.4 [doc≠code]: the sample's type enum lacks the import-workflow task types
    # and its properties lack image_id, request_id and user_id.
    assert schema["properties"]["type"]["enum"] == ["import", "api_image_import", "location_import"]
    schema["properties"]["type"]["enum"] = ["import"]
    assert {name: schema["properties"].pop(name) for name in TASK_FIELDS_BEYOND_SAMPLE} == (
        TASK_FIELDS_BEYOND_SAMPLE
    )
    assert schema == _sample("schemas-task-show-response.json")


def test_tasks_schema_equals_sample_except_code_only_fields():
    schema = tasks_schema()
    item = schema["properties"]["tasks"]["items"]

    assert item["properties"]["type"]["enum"] == ["import", "api_image_import", "location_import"]
    item["properties"]["type"]["enum"] = ["import"]
    assert {name: item["properties"].pop(name) for name in TASK_FIELDS_BEYOND_SAMPLE} == (
        TASK_FIELDS_BEYOND_SAMPLE
    )
    assert schema == _sample("schemas-tasks-list-response.json")


def test_image_schema_format_enums_follow_settings():
    with override_settings(DISK_FORMATS=["raw", "qcow2"], CONTAINER_FORMATS=["bare"]):
        schema = image_schema()

    assert schema["properties"]["disk_format"]["enum"] == [None, "raw", "qcow2"]
    assert schema["properties"]["container_format"]["enum"] == [None, "bare"]


def test_image_schema_reads_custom_properties_file_setting(tmp_path):
    path = tmp_path / "schema-image.json"
    path.write_text(
        json.dumps({"properties": {"hw_rng_model": {"type": "string"}}, "required": ["name"]})
    )

    with override_settings(IMAGE_SCHEMA_PROPERTIES_FILE=str(path)):
        schema = image_schema()

    assert set(schema["properties"]) == IMAGE_BASE_PROPERTIES | {"hw_rng_model"}
    assert schema["properties"]["hw_rng_model"] == {"type": "string", "is_base": False}
    assert schema["required"] == ["name"]


def test_image_schema_without_custom_properties_file_has_base_properties_only(tmp_path):
    with override_settings(IMAGE_SCHEMA_PROPERTIES_FILE=str(tmp_path / "missing.json")):
        schema = image_schema()

    assert set(schema["properties"]) == IMAGE_BASE_PROPERTIES
    assert "required" not in schema


def test_image_schema_refuses_custom_property_redefining_base_property(tmp_path):
    path = tmp_path / "schema-image.json"
    path.write_text(json.dumps({"min_ram": {"type": "string"}}))

    with (
        override_settings(IMAGE_SCHEMA_PROPERTIES_FILE=str(path)),
        pytest.raises(ImproperlyConfigured, match="min_ram"),
    ):
        image_schema()


def test_read_only_image_properties_are_the_read_only_base_fields():
    assert sorted(READ_ONLY_IMAGE_PROPERTIES) == [
        "checksum",
        "created_at",
        "direct_url",
        "file",
        "os_hash_algo",
        "os_hash_value",
        "schema",
        "self",
        "size",
        "status",
        "stores",
        "updated_at",
        "virtual_size",
    ]


def test_image_body_validates_against_image_schema_and_glanceclient_model():
    body = {**_image_body(), "os_distro": "cirros", "kernel_id": None, "hw_disk_bus": "virtio"}

    jsonschema.validate(body, image_schema())
    image = _glanceclient_image_model()(**body)

    assert image["os_distro"] == "cirros"


@pytest.mark.parametrize("name", ["os_distro", "hw_disk_bus"])
def test_image_body_with_integer_custom_property_fails_validation(name):
    body = {**_image_body(), name: 1}

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, image_schema())
    with pytest.raises(ValueError):
        _glanceclient_image_model()(**body)


def test_glanceclient_patch_uses_is_base_to_choose_add_or_replace():
    body = _image_body()
    del body["name"]
    image = _glanceclient_image_model()(**body)

    image["os_distro"] = "cirros"
    image["name"] = "renamed"

    assert sorted(json.loads(image.patch), key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/os_distro", "value": "cirros"},
    ]
