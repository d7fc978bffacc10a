"""``manage.py cleanup_stores``: what dead writes left in a store goes, nothing else."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from images.models import Image
from images.storage.base import new_attempt


def store_dir(data_dir):
    directory = data_dir / "images"
    directory.mkdir(exist_ok=True)
    return directory


def partial_of(data_dir, image: Image, attempt: str):
    path = store_dir(data_dir) / f".{image.id}.{attempt}.partial"
    path.write_bytes(b"half an image")
    return path


def writing(make_image, attempt: str, *, stale: bool) -> Image:
    image = make_image(status="saving", write_attempt=attempt)
    if stale:
        long_ago = timezone.now() - timedelta(hours=1)
        Image.objects.filter(pk=image.pk).update(updated_at=long_ago)
    return image


def cleanup(*args: str) -> str:
    out = StringIO()
    call_command("cleanup_stores", *args, stdout=out)
    return out.getvalue()


def test_leftovers_of_dead_writes_go_and_live_ones_and_data_stay(make_image, data_dir):
    dead_attempt, live_attempt = new_attempt(), new_attempt()
    dead = partial_of(data_dir, writing(make_image, dead_attempt, stale=True), dead_attempt)
    live_image = writing(make_image, live_attempt, stale=False)
    live = partial_of(data_dir, live_image, live_attempt)
    superseded = partial_of(data_dir, live_image, new_attempt())  # an earlier, taken-over write
    committed = store_dir(data_dir) / make_image(status="active").id
    committed.write_bytes(b"a whole image")

    out = cleanup()

    assert not dead.exists() and not superseded.exists()
    assert live.exists() and committed.exists()
    assert f"Removed {dead.name} from store file" in out
    assert out.strip().endswith("2 leftover(s) of unfinished writes were removed.")


def test_dry_run_lists_and_removes_nothing(make_image, data_dir):
    attempt = new_attempt()
    image = writing(make_image, attempt, stale=True)
    dead = partial_of(data_dir, image, attempt)

    out = cleanup("--dry-run")

    assert dead.exists()
    assert (
        f"Would remove the leftovers of image {image.id} attempt {attempt} from store file" in out
    )
    assert out.strip().endswith("1 leftover(s) of unfinished writes would be removed.")
