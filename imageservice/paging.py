"""Glance's list paging, shared by ``GET /v2/images`` and ``GET /v2/tasks``: ``limit`` and keyset
``marker`` paging over a total sort order, with ``first`` and ``next`` links.

The marker row's own values bound the next page (``WHERE (key, …) > (marker's key, …)``), so a page
costs one indexed query however many rows come before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import F, Model, OrderBy, Q, QuerySet

from imageservice.errors import GlanceError

if TYPE_CHECKING:
    from django.http import QueryDict

Order = Sequence[tuple[str, str]]


@dataclass
class Page:
    items: list
    first: str
    next: str | None

    def body(self, collection: str, rows: list[dict]) -> dict[str, object]:
        """Glance's list document: the rows, ``first``, the schema and, unless last, ``next``."""
        body = {collection: rows, "first": self.first, "schema": f"/v2/schemas/{collection}"}
        if self.next:
            body["next"] = self.next
        return body


def parse_limit(params: QueryDict) -> int:
    """The page size asked for, capped at ``API_LIMIT_MAX``; ``LIMIT_PARAM_DEFAULT`` if absent."""
    if "limit" not in params:
        return settings.LIMIT_PARAM_DEFAULT
    try:
        limit = int(params["limit"])
    except ValueError:
        raise GlanceError(400, "limit param must be an integer") from None
    if limit < 0:
        raise GlanceError(400, "limit param must be positive")
    return min(limit, settings.API_LIMIT_MAX)


def keyset_page(
    queryset: QuerySet,
    order: Order,
    limit: int,
    marker: Model | None,
    path: str,
    params: QueryDict,
) -> Page:
    """The ``limit`` rows of ``queryset`` that sort after ``marker`` in ``order``.

    ``order`` is ``(field, "asc" | "desc")`` pairs that include the primary key, so the order is
    total and no row is repeated or skipped between pages.
    """
    if marker is not None:
        queryset = queryset.filter(after_marker(marker, order))
    items = []
    if limit:
        items = list(queryset.order_by(*order_by_expressions(queryset.model, order))[:limit])
    # A short page is the last one; a full page always gets `next`, even if the following page
    # turns out empty. Never on an empty page: glanceclient would follow it forever.
    full_page = bool(items) and len(items) == limit
    return Page(
        items=items,
        first=page_link(path, params),
        next=page_link(path, params, marker=items[-1].pk) if full_page else None,
    )


def order_by_expressions(model: type[Model], order: Order) -> list[OrderBy]:
    return [sort_expression(key, direction, _nullable(model, key)) for key, direction in order]


def sort_expression(key: str, direction: str, nullable: bool) -> OrderBy:
    # NULL sorts as the smallest value on every backend (SQLite's and MySQL's rule, so
    # PostgreSQL is told explicitly). Only nullable keys get the clause: it would stop
    # PostgreSQL from using the (created_at, id) index.
    if not nullable:
        return F(key).asc() if direction == "asc" else F(key).desc()
    if direction == "asc":
        return F(key).asc(nulls_first=True)
    return F(key).desc(nulls_last=True)


def after_marker(marker: Model, order: Order) -> Q:
    """Rows that sort after ``marker`` in ``order`` (keyset paging over the whole sort tuple)."""
    alternatives = []
    same_so_far = Q()
    for key, direction in order:
        value = getattr(marker, key)
        beyond = sorts_beyond(key, direction, value, _nullable(type(marker), key))
        if beyond is not None:
            alternatives.append(same_so_far & beyond)
        same_so_far &= Q(**{f"{key}__isnull": True}) if value is None else Q(**{key: value})
    # Never empty: the order includes the primary key, which is never NULL.
    return Q(*alternatives, _connector=Q.OR)


def sorts_beyond(key: str, direction: str, value: object, nullable: bool) -> Q | None:
    """Rows whose ``key`` comes after ``value`` in ``direction``; NULL is the smallest value."""
    if direction == "asc":
        return Q(**{f"{key}__isnull": False}) if value is None else Q(**{f"{key}__gt": value})
    if value is None:
        return None
    beyond = Q(**{f"{key}__lt": value})
    return beyond | Q(**{f"{key}__isnull": True}) if nullable else beyond


def page_link(path: str, params: QueryDict, marker: str | None = None) -> str:
    """``path`` with the request's parameters (repeats kept), ``marker`` replaced."""
    query = params.copy()
    query.pop("marker", None)
    if marker is not None:
        query["marker"] = marker
    encoded = query.urlencode()
    return f"{path}?{encoded}" if encoded else path


def _nullable(model: type[Model], key: str) -> bool:
    return model._meta.get_field(key).null
