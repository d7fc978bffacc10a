"""The import workflow: accept a request (``POST /import``) and run it (a django-q2 job).

Accepting validates the request in Glance's order, takes the image's import lock, records a
Task with a snapshot of the operator's settings and enqueues ``tasks.jobs.run_import`` with the
task id only. Running claims the task, moves the data into the target stores through the plugin
chain and activates the image — or puts everything back into a state the user can retry.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.conf import settings
from django_q.tasks import async_task

from images import services as image_services
from images.models import FAILED_IMPORT, IMPORTING_TO_STORES, Image, ImageStatus, StagedData
from images.storage import stores
from imageservice import events
from imageservice.errors import GlanceError
from imageservice.identity.credentials import Credentials
from imageservice.policy.permissions import require_image_policy
from imageservice.quotas import services as quotas
from imageservice.quotas.models import IMAGE_SIZE_TOTAL
from importplugins.chain import import_settings_snapshot
from tasks import download_slots
from tasks.models import Task, TaskStatus
from tasks.web_download import ImportURIRefused, validate_import_uri


@dataclass(frozen=True)
class ImportRequest:
    method: str
    uri: str | None
    all_stores_must_succeed: bool
    body: Mapping[str, object]


def parse_import_request(body: object) -> ImportRequest:
    """Checks 1–5 of §7.3: shape, method name, enabled methods, boolean flags."""
    if not isinstance(body, dict):
        raise GlanceError(400, "Body expected in request.")
    method = body.get("method")
    if not isinstance(method, dict):
        raise GlanceError(400, "Import request requires a 'method' field.")
    name = method.get("name")
    if not name:
        raise GlanceError(400, "Import request requires a 'name' field.")
    if name not in settings.ENABLED_IMPORT_METHODS:
        raise GlanceError(400, f"Unknown import method name '{name}'.")
    for flag in ("all_stores_must_succeed", "all_stores"):
        if flag in body and not isinstance(body[flag], bool):
            raise GlanceError(400, f"'{flag}' must be boolean value only")
    listed = body.get("stores")
    # Glance walks a string character by character ("Store for identifier f not found").
    if listed is not None and not (
        isinstance(listed, list) and all(isinstance(name, str) for name in listed)
    ):
        raise GlanceError(400, "'stores' must be a list of store identifiers")
    return ImportRequest(
        method=name,
        uri=method.get("uri"),
        all_stores_must_succeed=body.get("all_stores_must_succeed", True),
        body=body,
    )


def import_image(
    image: Image,
    request: ImportRequest,
    credentials: Credentials,
    *,
    store_header: str | None,
    request_id: str | None,
) -> Task | None:
    """``POST /v2/images/{id}/import`` for a request that passed :func:`parse_import_request`.

    Checks in Glance's order — stored total, status, policy, target stores, web-download URI —
    then accepts. The policy is checked only after the status: Glance answers 409 for an image
    in the wrong status before it asks whether the caller may import into it.
    """
    # Glance refuses any import while the project is over its stored total, before all else.
    quotas.enforce(image.owner, IMAGE_SIZE_TOTAL)
    check_status(image, request.method)
    require_image_policy(import_policy(request.method), credentials, image)
    targets = target_stores(image, request, store_header)
    check_uri(request)
    return accept_import(image, request, targets, credentials, request_id)


def import_policy(method: str) -> str:
    # Copying data between stores has its own rule (admin only by default) instead of
    # modify_image.
    return "copy_image" if method == "copy-image" else "modify_image"


def check_status(image: Image, method: str) -> None:
    """Checks 8–9 of §7.3: the status each method starts from, and formats set."""
    if method == "copy-image":
        if image.status != ImageStatus.ACTIVE:
            raise GlanceError(409, "Only images with status active can be targeted for copying")
        return
    # Glance says so first, whatever the method: "needs to be staged" would send the user of an
    # active image off to stage data it cannot take.
    if image.status == ImageStatus.ACTIVE:
        raise GlanceError(409, "Image with status active cannot be target for import")
    if method == "glance-direct" and image.status != ImageStatus.UPLOADING:
        raise GlanceError(409, "Image needs to be staged before 'glance-direct' method can be used")
    if method == "web-download" and image.status != ImageStatus.QUEUED:
        raise GlanceError(409, f"Image needs to be in 'queued' state to use '{method}' method")
    for field in ("container_format", "disk_format"):
        if not getattr(image, field):
            raise GlanceError(409, f"'{field}' needs to be set before import")


def target_stores(image: Image, request: ImportRequest, store_header: str | None) -> list[str]:
    """Checks 13–18 of §7.3: which stores the import writes to."""
    body = request.body
    if not stores.multiple_stores():
        if request.all_stores_must_succeed is False:
            raise GlanceError(
                400, "All_stores_must_succeed can only be set with enabled_backends option"
            )
        return [stores.default_store().id]
    wanted = _requested_stores(body, store_header)
    known = stores.all_stores()
    for name in wanted:
        if name not in known:
            raise GlanceError(409, f"Store for identifier {name} not found")
    if request.method == "copy-image":
        return _stores_to_copy_to(image, wanted, explicit=not body.get("all_stores"))
    return wanted


def _requested_stores(body: Mapping[str, object], store_header: str | None) -> list[str]:
    listed = body.get("stores")
    if body.get("all_stores"):
        if listed or store_header:
            raise GlanceError(
                400,
                "All_stores parameter can't be used with x-image-meta-store header or stores "
                "parameter",
            )
        return list(stores.all_stores())
    if listed and store_header:
        raise GlanceError(
            400, "Stores parameter and x-image-meta-store header can't be both specified"
        )
    if listed:
        return [str(name) for name in listed]
    return [store_header or stores.default_store().id]


def _stores_to_copy_to(image: Image, wanted: list[str], explicit: bool) -> list[str]:
    present = {location.store for location in image.locations.all()}
    if explicit:
        for name in wanted:
            if name in present:
                raise GlanceError(400, f"Image is already present at store '{name}'")
        return wanted
    return [name for name in wanted if name not in present]


def check_uri(request: ImportRequest) -> None:
    if request.method != "web-download":
        return
    try:
        validate_import_uri(request.uri)
    except ImportURIRefused as refusal:
        raise GlanceError(
            400, f"URI for web-download does not pass filtering: {request.uri} ({refusal})"
        ) from refusal


def take_lock(image: Image) -> None:
    """Check 12 of §7.3: refuse while a live task holds the lock; break a dead one."""
    holder_id = image.import_lock_holder()
    if holder_id is None:
        return
    holder = Task.objects.filter(pk=holder_id).first()
    if holder is not None and not holder.is_stale():
        raise GlanceError(409, "Image has active task")
    if holder is not None:
        holder.finish(TaskStatus.FAILURE, "Expired lock preempted")
    if not image.release_import_lock(holder_id):
        raise GlanceError(409, "Image has active task")


def accept_import(
    image: Image,
    request: ImportRequest,
    targets: list[str],
    credentials: Credentials,
    request_id: str | None,
) -> Task | None:
    """Create the task, take the lock and enqueue the job; None when there is nothing to do."""
    if not targets:
        return None  # copy-image to all stores that already hold the data: Glance's no-op 202
    project_id = credentials.project_id or ""
    with _counted(request.method, project_id):
        take_lock(image)
        task = Task.objects.create(
            type="api_image_import",
            owner=project_id,
            image_id=image.id,
            user_id=credentials.user_id,
            request_id=request_id,
            api_node=settings.NODE_NAME,
            input={
                "image_id": image.id,
                "import_req": dict(request.body),
                "backend": targets,
                "roles": sorted(credentials.roles),
                "caller": caller_record(credentials),
                "settings": import_settings_snapshot(),
            },
        )
    if not image.take_import_lock(task.id):
        task.finish(TaskStatus.FAILURE, "Another import took the image first.")
        raise GlanceError(
            409,
            f"New operation on image '{image.id}' is not permitted as prior operation is still "
            "in progress",
        )
    _mark_importing_to(image, targets)
    _emit_accepted(task)
    enqueue_import(task)
    return task


@contextlib.contextmanager
def _counted(method: str, project_id: str) -> Iterator[None]:
    """For a web-download: refuse it over the project's limit, and record its task under the
    same lock as the count, so two requests cannot both take the last place."""
    if method != "web-download":
        yield
        return
    with download_slots.serialised():
        download_slots.check_project_limit(project_id)
        yield


def _emit_accepted(task: Task) -> None:
    # Before the job is enqueued: with IMPORT_JOBS_SYNC it runs, and emits, right there.
    events.emit("task.create", task=task, facts={"method": task.import_method()})
    events.emit("task.run", task=task, facts={"method": task.import_method()})


def _mark_importing_to(image: Image, targets: list[str]) -> None:
    shown = targets if stores.multiple_stores() else []
    image.set_system_property(IMPORTING_TO_STORES, ",".join(shown))
    failed = [name for name in image.store_names_in(FAILED_IMPORT) if name not in shown]
    image.set_system_property(FAILED_IMPORT, ",".join(failed))


def enqueue_import(task: Task) -> None:
    # By dotted path and id only: the job re-reads everything, so a redelivery is harmless.
    async_task("tasks.jobs.run_import", task.id, sync=settings.IMPORT_JOBS_SYNC)


def create_legacy_import_task(
    body: object, credentials: Credentials, request_id: str | None
) -> Task:
    """``POST /v2/tasks`` with ``type: import``: a new image filled from ``import_from``.

    Runs as a web-download import of that new image, so it gets the same URI filter, fetch
    hardening and failure handling.
    """
    task_input = _legacy_input(body)
    uri = task_input["import_from"]
    if not isinstance(uri, str) or not uri.lower().startswith(("http://", "https://")):
        raise GlanceError(400, "URI for import_from must be an http or https URL.")
    try:
        validate_import_uri(uri)
    except ImportURIRefused as refusal:
        raise GlanceError(400, f"Import from URI does not pass filtering: {refusal}") from refusal
    project_id = credentials.project_id or ""
    request = ImportRequest(
        "web-download", uri, True, {"method": {"name": "web-download", "uri": uri}}
    )
    with _counted(request.method, project_id):
        image = _legacy_image(task_input, credentials)
        task = Task.objects.create(
            type="import",
            owner=project_id,
            image_id=image.id,
            user_id=credentials.user_id,
            request_id=request_id,
            api_node=settings.NODE_NAME,
            input={
                **task_input,
                "import_req": dict(request.body),
                "backend": [stores.default_store().id],
                "roles": sorted(credentials.roles),
                "settings": import_settings_snapshot(),
            },
        )
    image.take_import_lock(task.id)
    _mark_importing_to(image, [stores.default_store().id])
    _emit_accepted(task)
    enqueue_import(task)
    return task


def _legacy_input(body: object) -> dict:
    if not isinstance(body, dict):
        raise GlanceError(400, "Provided object does not match schema 'task': not an object")
    if "type" not in body:
        raise GlanceError(400, "Task 'type' is required")
    if "input" not in body:
        raise GlanceError(400, "Task 'input' is required")
    extra = set(body) - {"type", "input"}
    if extra:
        raise GlanceError(
            400,
            "Provided object does not match schema 'task': Additional properties are not "
            f"allowed ({', '.join(sorted(extra))} were unexpected)",
        )
    if body["type"] not in ("import", "api_image_import", "location_import"):
        raise GlanceError(
            400,
            f"Provided object does not match schema 'task': '{body['type']}' is not one of "
            "['import', 'api_image_import', 'location_import']",
        )
    if body["type"] != "import":
        raise GlanceError(400, f"Task type {body['type']} cannot be created through the API.")
    task_input = body["input"]
    if not isinstance(task_input, dict) or "import_from" not in task_input:
        raise GlanceError(400, "Input does not contain 'import_from' field")
    return task_input


def _legacy_image(task_input: dict, credentials: Credentials) -> Image:
    properties = task_input.get("image_properties") or {}
    if not isinstance(properties, dict):
        raise GlanceError(400, "Input 'image_properties' must be an object.")
    image_body = {"container_format": "bare", **properties}
    if task_input.get("import_from_format"):
        image_body.setdefault("disk_format", task_input["import_from_format"])
    image_services.validate_create_body(image_body)
    return image_services.create_image(image_body, credentials)


def caller_record(credentials: Credentials) -> dict[str, object]:
    """What a retry needs to run an import again as the caller who asked for it (kept in the
    task's input, never shown by the API): user, project, roles and Keystone's domain facts."""
    return {
        "user_id": credentials.user_id,
        "project_id": credentials.project_id,
        "roles": sorted(credentials.roles),
        "user_domain_id": credentials.user_domain_id,
        "project_domain_id": credentials.project_domain_id,
        "is_admin_project": credentials.is_admin_project,
    }


def caller_credentials(task: Task) -> Credentials:
    """The credentials ``task`` was accepted under, from :func:`caller_record`; tasks accepted
    before it was kept fall back to their owner, user and roles."""
    task_input = task.input or {}
    caller = task_input.get("caller") or {
        "user_id": task.user_id,
        "project_id": task.owner or None,
        "roles": task_input.get("roles", []),
    }
    return Credentials(
        user_id=caller.get("user_id"),
        project_id=caller.get("project_id"),
        roles=frozenset(caller.get("roles", [])),
        user_domain_id=caller.get("user_domain_id"),
        project_domain_id=caller.get("project_domain_id"),
        is_admin_project=caller.get("is_admin_project", True),
    )


def retry_import(task: Task) -> Task:
    """A new import of a failed glance-direct import's staged data, as its caller would send
    ``POST /import`` again.

    The failed import left the image ``uploading`` with its data staged (see tasks.runner).
    The retry runs :func:`import_image` — the API's checks and policy — under the original
    caller's credentials (:func:`caller_credentials`), with the same target stores and a fresh
    settings snapshot. So the new task belongs to the image owner's project, and plugins that
    look at the caller's roles (``inject_image_metadata``) see the caller's, not the operator's.
    """
    if task.status != TaskStatus.FAILURE:
        raise GlanceError(409, "Only failed imports can be retried.")
    request = parse_import_request((task.input or {}).get("import_req"))
    if request.method != "glance-direct":
        raise GlanceError(409, f"Only glance-direct imports can be retried, not {request.method}.")
    image = Image.objects.filter(pk=task.image_id, deleted=False).first()
    if image is None:
        raise GlanceError(404, f"Image {task.image_id} no longer exists.")
    if image.status != ImageStatus.UPLOADING or not StagedData.objects.filter(image=image).exists():
        raise GlanceError(
            409, f"Image {image.id} is {image.status} without staged data; stage it again."
        )
    return import_image(
        image,
        request,
        caller_credentials(task),
        store_header=_store_header_of(task, request),
        request_id=f"req-{uuid.uuid4()}",
    )


def retryable_task(image_id: str) -> Task | None:
    """The image's latest import when it failed and left staged data a retry can use."""
    image = Image.objects.filter(pk=image_id, deleted=False, status=ImageStatus.UPLOADING).first()
    if image is None or not StagedData.objects.filter(image=image).exists():
        return None
    latest = Task.objects.filter(image_id=image_id).order_by("-created_at", "-id").first()
    return latest if latest is not None and latest.status == TaskStatus.FAILURE else None


def _store_header_of(task: Task, request: ImportRequest) -> str | None:
    """The store the original request named in ``X-Image-Meta-Store`` (or got by default), so
    the retry targets the same stores; a body listing its stores names them itself."""
    if request.body.get("stores") or request.body.get("all_stores"):
        return None
    backend = task.input.get("backend") or []
    return backend[0] if len(backend) == 1 else None
