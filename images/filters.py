"""GET /v2/images: filters, sorting and marker paging (glance-api-v2.md §3.4, §5.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet

from images.models import Image, ImageMember, ImageProperty, ImageStatus, ImageTag, Visibility
from images.protections import access_for
from imageservice.errors import GlanceError
from imageservice.paging import Page, keyset_page, parse_limit

if TYPE_CHECKING:
    from django.http import QueryDict
    from rest_framework.request import Request

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
SORT_DIRS = ("asc", "desc")
TIE_BREAKERS = ("created_at", "id")
VISIBILITY_VALUES = ("community", "public", "private", "shared", "all")
MEMBER_STATUS_VALUES = ("pending", "accepted", "rejected", "all")
OPERATOR_FIELDS = frozenset({"name", "id", "status", "container_format", "disk_format"})
TIME_FIELDS = frozenset({"created_at", "updated_at"})
TIME_LOOKUPS = {"gt": "gt", "gte": "gte", "eq": "exact", "lt": "lt", "lte": "lte"}
# The numeric columns: `<column>_min` / `<column>_max` are inclusive bounds on any of them.
RANGE_FIELDS = frozenset({"size", "virtual_size", "min_disk", "min_ram"})
# Columns compared by plain equality when named as a filter; any other name is a property.
EQUALITY_FIELDS = frozenset(
    {
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "owner",
        "size",
        "virtual_size",
        "min_disk",
        "min_ram",
    }
)
# Parameters with a meaning of their own. Glance forces `deleted=False` whatever the caller
# sends, so `deleted` is ignored rather than treated as a filter.
CONTROL_PARAMS = frozenset(
    {
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "member_status",
        "tag",
        "visibility",
        "os_hidden",
        "protected",
        "changes-since",
        "deleted",
    }
)
UNLISTED_STATUSES = (ImageStatus.KILLED, ImageStatus.DELETED, ImageStatus.PENDING_DELETE)
NOTHING = Q(pk__in=[])


@dataclass
class ListQuery:
    """A validated GET /v2/images request."""

    limit: int
    marker: str | None
    order: list[tuple[str, str]]
    visibility: str | None
    member_status: str
    conditions: Q


def list_images(request: Request, is_admin: bool) -> Page:
    """One page of the images the caller may list, with Glance's `first` and `next` links.

    Raises ``GlanceError`` (400/403) for invalid parameters and markers, as Glance does.
    """
    params = request.query_params
    query = parse_list_query(params, access_for(request).can_read)
    project_id = request.credentials.project_id
    queryset = listable_images(project_id, is_admin, query.visibility, query.member_status)
    queryset = queryset.filter(query.conditions).for_display()
    marker = None
    if query.marker is not None:
        marker = marker_image(query.marker, project_id, is_admin)
    return keyset_page(queryset, query.order, query.limit, marker, "/v2/images", params)


# --- request parsing ---------------------------------------------------------------------


def parse_list_query(params: QueryDict, can_read: Callable[[str], bool]) -> ListQuery:
    """``can_read`` says whether the caller may read a custom property (property protections):
    a filter on one it may not read matches nothing, as if no image had it."""
    visibility = parse_visibility(params)
    if params.get("changes-since"):
        raise GlanceError(400, 'The "changes-since" filter is no longer available on v2.')
    member_status = parse_member_status(params)
    limit = parse_limit(params)
    order = parse_sort(params)
    conditions = hidden_condition(params) & protected_condition(params)
    conditions &= tag_condition(params) & filter_conditions(params, can_read)
    return ListQuery(limit, params.get("marker"), order, visibility, member_status, conditions)


def parse_visibility(params: QueryDict) -> str | None:
    visibility = params.get("visibility")
    # An empty value is not validated, and then matches no image (as in Glance).
    if visibility and visibility not in VISIBILITY_VALUES:
        raise GlanceError(400, f"Invalid visibility value: {visibility}")
    return visibility


def parse_member_status(params: QueryDict) -> str:
    member_status = params.get("member_status", "accepted")
    if member_status not in MEMBER_STATUS_VALUES:
        raise GlanceError(400, f"Invalid status: {member_status}")
    return member_status


def parse_sort(params: QueryDict) -> list[tuple[str, str]]:
    """The full sort tuple: requested keys, then the `created_at`/`id` tie-breakers."""
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise GlanceError(400, "Old and new sorting syntax cannot be combined")
        keys, dirs = parse_new_sort_syntax(params["sort"])
    else:
        keys, dirs = parse_classic_sort_syntax(params)
    keys = keys or ["created_at"]
    dirs = dirs or ["desc"]
    # One direction applies to every key and to the tie-breakers; with several, the
    # tie-breakers fall back to `desc`.
    default_dir = dirs[0] if len(dirs) == 1 else "desc"
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    order = list(zip(keys, dirs, strict=True))
    order += [(key, default_dir) for key in TIE_BREAKERS if key not in keys]
    return order


def parse_new_sort_syntax(value: str) -> tuple[list[str], list[str]]:
    keys, dirs = [], []
    for item in value.strip().split(","):
        key, _, direction = item.partition(":")
        keys.append(valid_sort_key(key.strip()))
        dirs.append(valid_sort_dir(direction.strip() or "desc"))
    return keys, dirs


def parse_classic_sort_syntax(params: QueryDict) -> tuple[list[str], list[str]]:
    keys = [valid_sort_key(key.strip()) for key in params.getlist("sort_key")]
    dirs = [valid_sort_dir(direction.strip()) for direction in params.getlist("sort_dir")]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise GlanceError(400, "Number of sort dirs does not match the number of sort keys")
    return keys, dirs


def valid_sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise GlanceError(
            400,
            f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.",
        )
    return key


def valid_sort_dir(direction: str) -> str:
    if direction not in SORT_DIRS:
        raise GlanceError(400, f"Invalid sort direction: {direction}")
    return direction


# --- filters -----------------------------------------------------------------------------


def hidden_condition(params: QueryDict) -> Q:
    # Case-insensitive because glanceclient's --hidden and openstacksdk send `True`.
    return Q(os_hidden=boolean_filter("os_hidden", params.get("os_hidden", "false").lower()))


def protected_condition(params: QueryDict) -> Q:
    # Unlike os_hidden, Glance accepts only the lower-case spellings here.
    protected = params.get("protected")
    if protected is None:
        return Q()
    return Q(protected=boolean_filter("protected", protected))


def boolean_filter(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise GlanceError(
            400,
            f"Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'.",
        )
    return value == "true"


def tag_condition(params: QueryDict) -> Q:
    return Q(
        *(
            Exists(ImageTag.objects.filter(image=OuterRef("pk"), value=tag.strip()))
            for tag in params.getlist("tag")
        )
    )


def filter_conditions(params: QueryDict, can_read: Callable[[str], bool]) -> Q:
    """Every remaining parameter narrows the list (AND); repeated filters use the last value."""
    conditions = Q()
    for key in params:
        if key not in CONTROL_PARAMS:
            conditions &= filter_condition(key, params[key], can_read)
    return conditions


def filter_condition(key: str, value: str, can_read: Callable[[str], bool]) -> Q:
    if key in OPERATOR_FIELDS:
        return operator_condition(key, value)
    if key in TIME_FIELDS:
        return time_condition(key, value)
    if key[-4:] in ("_min", "_max") and key[:-4] in RANGE_FIELDS:
        return range_condition(key[:-4], key[-3:], value)
    if key in EQUALITY_FIELDS:
        return column_equality(key, value)
    if not can_read(key):
        # Glance filters on it all the same, so a caller could learn a protected value by
        # guessing it: one filter per guess, the image listed when the guess is right.
        return NOTHING
    rows = ImageProperty.objects.filter(
        ImageProperty.property_equals(key, value), image=OuterRef("pk")
    )
    return Q(Exists(rows))


def split_operator(value: str) -> tuple[str, str]:
    """`op:rest`, or `eq` with the whole value when there is no `:` or it is a timestamp."""
    op, sep, rest = value.partition(":")
    if not sep or parse_timestamp(value) is not None:
        return "eq", value
    return op, rest


def operator_condition(key: str, value: str) -> Q:
    op, operand = split_operator(value)
    if op == "eq":
        return Q(**{key: operand})
    if op == "in":
        return Q(**{f"{key}__in": split_in_list(operand)})
    raise GlanceError(400, f"Unable to filter by unknown operator '{op}'.")


def time_condition(key: str, value: str) -> Q:
    op, operand = split_operator(value)
    moment = parse_timestamp(operand)
    if moment is None:
        raise GlanceError(400, f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.')
    if op == "neq":
        return ~Q(**{key: moment})
    if op not in TIME_LOOKUPS:
        raise GlanceError(400, "Unable to filter on a unknown operator.")
    return Q(**{f"{key}__{TIME_LOOKUPS[op]}": moment})


def parse_timestamp(text: str) -> datetime | None:
    """An ISO 8601 timestamp in UTC; no offset means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        return None


def range_condition(column: str, bound: str, value: str) -> Q:
    try:
        number = int(value)
    except ValueError:
        raise GlanceError(400, "Unable to filter on a range with a non-numeric value.") from None
    lookup = "gte" if bound == "min" else "lte"
    return Q(**{f"{column}__{lookup}": number})


def column_equality(column: str, value: str) -> Q:
    try:
        typed = Image._meta.get_field(column).to_python(value)
    except ValidationError:
        # `min_ram=abc` cannot equal any integer column: no match rather than a 500.
        return NOTHING
    return Q(**{column: typed})


class InvalidInList(GlanceError):
    def __init__(self, text: str, reason: str):
        super().__init__(400, f"Invalid filter value {text}. {reason}")


def split_in_list(text: str) -> list[str]:
    """The elements of an `in:` list (api-wg syntax).

    Commas separate elements; an element wrapped in double quotes may contain commas, and
    `\\"` stands for a literal quote. A quote must open an element and close it.
    Not the csv module: it lets a quote start inside an element and cannot give Glance's 400s.
    """
    elements: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and text[index + 1 : index + 2] == '"':
            current.append('"')
            index += 2
            continue
        if char == '"':
            check_quote_position(text, index, quoted, bool(current))
            quoted = not quoted
        elif char == "," and not quoted:
            elements.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if quoted:
        raise InvalidInList(text, "The quote is not closed.")
    # A trailing comma ends the list rather than adding an empty element (as in Glance).
    if text and not text.endswith(","):
        elements.append("".join(current))
    return elements


def check_quote_position(text: str, index: int, closing: bool, inside_element: bool) -> None:
    if closing:
        if index + 1 < len(text) and text[index + 1] != ",":
            raise InvalidInList(text, "There is no comma after closing quotation mark.")
    elif inside_element or (index and text[index - 1] != ","):
        raise InvalidInList(text, "There is no comma before opening quotation mark.")


# --- visibility --------------------------------------------------------------------------


def listable_images(
    project_id: str | None, is_admin: bool, visibility: str | None, member_status: str
) -> QuerySet[Image]:
    """Images the caller's list may contain (§3.4), before the request's filters."""
    queryset = Image.objects.alive().exclude(status__in=UNLISTED_STATUSES)
    if not is_admin:
        queryset = queryset.filter(readable_in_list(project_id, member_status))
    if visibility is None:
        # Other projects' community images are browsed on request only, even by admins.
        return queryset.filter(owned_by(project_id) | ~Q(visibility=Visibility.COMMUNITY))
    if visibility != "all":
        return queryset.filter(visibility=visibility)
    return queryset


def owned_by(project_id: str | None) -> Q:
    # Without a project the caller owns nothing; `owner=None` would match ownerless images.
    return Q(owner=project_id) if project_id is not None else NOTHING


def readable_in_list(project_id: str | None, member_status: str) -> Q:
    """Glance's non-admin list: public, community, own, and shared-with-me by member status."""
    everyone = Q(visibility__in=[Visibility.PUBLIC, Visibility.COMMUNITY])
    if project_id is None:
        return everyone
    memberships = ImageMember.objects.filter(image=OuterRef("pk"), member_id=project_id)
    if member_status != "all":
        memberships = memberships.filter(status=member_status)
    shared_with_me = Q(visibility=Visibility.SHARED) & Exists(memberships)
    return everyone | owned_by(project_id) | shared_with_me


# --- marker paging -----------------------------------------------------------------------


def marker_image(marker: str, project_id: str | None, is_admin: bool) -> Image:
    image = Image.objects.filter(pk=marker).first()
    # Admins may resume from an image deleted since the previous page was served.
    if image is None or (is_deleted(image) and not is_admin):
        raise GlanceError(400, f"No image found with ID {marker}")
    if not image.is_visible_to(project_id, is_admin):
        raise GlanceError(403, f"Forbidden to access image {marker}")
    return image


def is_deleted(image: Image) -> bool:
    return image.deleted or image.status in (ImageStatus.DELETED, ImageStatus.PENDING_DELETE)
