"""An import taken for dead and replaced by another never changes what the new one owns."""

from __future__ import annotations

import uuid

import pytest

from images.models import IMPORT_LOCK, ImageProperty
from tasks import runner
from tasks.models import Task
from tests.support import reloaded
from tests.test_import import DATA, GLANCE_DIRECT, stage, start_import


@pytest.fixture
def accepted(owner, make_image, data_dir, settings):
    """A glance-direct import accepted but not yet run (no worker), its data staged."""
    image = make_image(disk_format="raw", container_format="bare")
    stage(owner, image)
    settings.IMPORT_JOBS_SYNC = False
    assert start_import(owner, image, GLANCE_DIRECT).status_code == 202
    return image, Task.objects.get(image_id=image.id)


def hand_lock_to_another_import(image) -> str:
    other = str(uuid.uuid4())
    ImageProperty.objects.filter(image=image, name=IMPORT_LOCK).update(value=other)
    return other


def test_taken_over_import_keeps_nothing_it_wrote(accepted, data_dir):
    image, task = accepted
    other = hand_lock_to_another_import(image)

    runner.run_import(task.id)

    task.refresh_from_db()
    assert (task.status, task.message) == ("failure", runner.TAKEN_OVER)
    assert not (data_dir / "images" / image.id).exists()
    assert not reloaded(image).locations.exists()
    assert reloaded(image).import_lock_holder() == other
    assert (data_dir / "staging" / image.id).read_bytes() == DATA


def test_failing_a_taken_over_import_leaves_the_image_to_the_new_one(accepted, data_dir):
    image, task = accepted
    image.move("uploading", "importing")
    other = hand_lock_to_another_import(image)

    runner.fail_import(task, reloaded(image), "The worker running this import stopped.")

    task.refresh_from_db()
    assert task.status == "failure"
    assert reloaded(image).status == "importing"
    assert reloaded(image).import_lock_holder() == other
    assert (data_dir / "staging" / image.id).read_bytes() == DATA
