"""How the API views describe themselves to drf-spectacular: one decorator per handler.

``glance_operation`` turns a short declaration (summary, body, success answers, the error
statuses beyond the common ones) into drf-spectacular's ``extend_schema``, with every error in
the three representations Glance negotiates (``imageservice/errors.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from imageservice.openapi.components import Schema, ref

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
ERROR_MEDIA_TYPES = (JSON, "text/html", "text/plain")
# Any /v2 call can answer these: a body where none is expected or an undecodable URL (400),
# no or a bad token (401), a policy refusal (403), an X-OpenStack-Request-ID over 64 characters
# (431).
COMMON_ERRORS = (400, 401, 403, 431)

REQUEST_ID = OpenApiParameter(
    "X-OpenStack-Request-ID",
    str,
    OpenApiParameter.HEADER,
    description="Echoed back (prefixed `req-`); a new one is made when absent.",
)

BINARY = {OCTET_STREAM: {"type": "string", "format": "binary"}}

# A success answer: a component name (JSON), None (no body), or {media type: schema}.
Answer = str | None | Mapping[str, Schema]


def error_responses(codes: Iterable[int], schema: Schema | None = None) -> dict[Any, Any]:
    """``codes`` in Glance's error shape: JSON, HTML or plain text, as ``Accept`` asks."""
    responses: dict[Any, Any] = {}
    for code in sorted(set(codes)):
        description = HTTPStatus(code).phrase
        for media_type in ERROR_MEDIA_TYPES:
            body = (schema or ref("Error")) if media_type == JSON else {"type": "string"}
            responses[(code, media_type)] = OpenApiResponse(body, description=description)
    return responses


def _success(code: int, answer: Answer, description: str) -> dict[Any, Any]:
    if answer is None:
        return {code: OpenApiResponse(description=description or HTTPStatus(code).phrase)}
    content = {JSON: ref(answer)} if isinstance(answer, str) else answer
    return {
        (code, media_type): OpenApiResponse(schema, description=description)
        for media_type, schema in content.items()
    }


def glance_operation(
    operation_id: str | None,
    summary: str,
    *,
    tag: str,
    ok: Mapping[int, Answer],
    errors: Iterable[int] = (),
    body: Mapping[str, Schema] | str | None = None,
    parameters: Iterable[OpenApiParameter] = (),
    description: str = "",
    ok_description: str = "",
):
    """``extend_schema`` for one handler. ``operation_id`` None: drf-spectacular's own, from
    the path (for a view class serving several paths). ``body``: a component name (JSON) or
    ``{media type: schema}``; ``errors``: the statuses beyond ``COMMON_ERRORS``."""
    responses: dict[Any, Any] = {}
    for code, answer in ok.items():
        responses.update(_success(code, answer, ok_description))
    responses.update(error_responses((*COMMON_ERRORS, *errors)))
    request = {JSON: ref(body)} if isinstance(body, str) else body
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        # Never empty: drf-spectacular would fall back to the view's docstring.
        description=description or f"{summary}.",
        tags=[tag],
        request=request,
        responses=responses,
        parameters=[REQUEST_ID, *parameters],
    )


def query(name: str, description: str, type_: type = str, **extra: Any) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **extra)


def header(name: str, description: str, type_: type = str) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.HEADER, description=description)


IMAGE_SIZE = header(
    "X-Openstack-Image-Size", "The size the client sends, when not in Content-Length", int
)


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """``X-Auth-Token``: a local API token, or a Keystone token in Keystone mode."""

    target_class = "imageservice.identity.authentication.TokenAuthentication"
    name = "token"
    match_subclasses = True

    def get_security_definition(self, auto_schema) -> Schema:
        return {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}


class KeystoneAuthenticationScheme(TokenAuthenticationScheme):
    target_class = "imageservice.identity.authentication.KeystoneAuthentication"
