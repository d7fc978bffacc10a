"""Glance's in-code default policy (the secure-RBAC defaults, ``enforce_new_defaults`` on).

The pre-Wallaby deprecated defaults are deliberately absent: current Glance does not OR them in.
"""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
MEMBER = "role:member and project_id:%(project_id)s"
READER = "role:reader and project_id:%(project_id)s"
VISIBLE = (
    "project_id:%(project_id)s or project_id:%(member_id)s"
    " or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s"
)

ADMIN_OR_MEMBER = f"{ADMIN} or ({MEMBER})"
ADMIN_OR_READER = f"{ADMIN} or ({READER})"
VISIBLE_TO_MEMBER = f"{ADMIN} or (role:member and ({VISIBLE}))"

_BASE = {
    "default": "",
    "context_is_admin": "role:admin",
    "service_api": "role:service or role:admin",
}

_IMAGES = {
    "add_image": f"{ADMIN} or ({MEMBER} and project_id:%(owner)s)",
    "get_image": f"{ADMIN} or (role:reader and ({VISIBLE}))",
    "get_images": ADMIN_OR_READER,
    "modify_image": ADMIN_OR_MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": ADMIN_OR_MEMBER,
    "delete_image": ADMIN_OR_MEMBER,
    "upload_image": ADMIN_OR_MEMBER,
    "download_image": VISIBLE_TO_MEMBER,
    "download_from_store": VISIBLE_TO_MEMBER,
    "copy_image": ADMIN,
    "deactivate": ADMIN_OR_MEMBER,
    "reactivate": ADMIN_OR_MEMBER,
}

_LOCATIONS = {
    "get_image_location": ADMIN_OR_READER,
    "set_image_location": ADMIN_OR_MEMBER,
    "delete_image_location": ADMIN,
    "add_image_location": f"rule:service_api or ({MEMBER} and project_id:%(owner)s)",
    "fetch_image_location": "rule:service_api",
}

# Glance writes this one without parentheses around the reader part; `and` binds tighter.
_OWNER_OR_MEMBER = "project_id:%(project_id)s or project_id:%(member_id)s"
_MEMBER_READ = f"{ADMIN} or role:reader and ({_OWNER_OR_MEMBER})"
_MEMBERS = {
    "add_member": ADMIN_OR_MEMBER,
    "delete_member": ADMIN_OR_MEMBER,
    "get_member": _MEMBER_READ,
    "get_members": _MEMBER_READ,
    "modify_member": f"{ADMIN} or (role:member and project_id:%(member_id)s)",
}

_CACHE = {
    name: ADMIN
    for name in (
        "manage_image_cache",
        "cache_image",
        "cache_list",
        "cache_delete",
        "cache_clean",
        "cache_prune",
        "list_cached_nodes",
    )
}

_STORES = {"stores_info_detail": f"{ADMIN} or rule:service_api"}

_TASKS = {
    # The only task rule that is enforced: it gates every /v2/tasks call.
    "tasks_api_access": ADMIN,
    # Glance registers these but has checked none of them since Xena; they stay so that operator
    # files naming them (the admin guide's seed file does) remain valid. Import creates its
    # tasks without any task policy.
    "get_task": "",
    "get_tasks": "",
    "add_task": "",
    "modify_task": "",
}

_IMAGESERVICE = {
    # Glance serves schemas and version discovery without consulting any policy. Our single
    # permission class insists that every view names a rule, so that no endpoint can forget its
    # check; these rules keep Glance's open behaviour while letting an operator tighten it.
    "get_schemas": "",
    "get_discovery": "",
}

DEFAULT_RULES: dict[str, str] = {
    **_BASE,
    **_IMAGES,
    **_LOCATIONS,
    **_MEMBERS,
    **_CACHE,
    **_STORES,
    **_TASKS,
    **_IMAGESERVICE,
}
