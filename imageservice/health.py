"""``GET /healthcheck`` for load balancers, as Glance's oslo.middleware healthcheck answers it.

200 ``OK`` (text/plain, no token needed) while the node can serve; 503 ``DISABLED BY FILE``
while the file named by ``HEALTHCHECK_DISABLE_BY_FILE_PATH`` exists, so an operator can drain a
node before stopping it; 503 when the database cannot be reached, since no API call works then.
``HEAD`` answers 204 instead of 200 and no body, as oslo.middleware does.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)
DISABLED_BY_FILE = "DISABLED BY FILE"
DATABASE_UNREACHABLE = "DATABASE UNREACHABLE"


@csrf_exempt
def healthcheck(request: HttpRequest) -> HttpResponse:
    problem = _problem()
    if request.method == "HEAD":
        return HttpResponse(status=503 if problem else 204, content_type="text/plain")
    return HttpResponse(
        problem or "OK", status=503 if problem else 200, content_type="text/plain; charset=UTF-8"
    )


def _problem() -> str | None:
    disable_path = settings.HEALTHCHECK_DISABLE_BY_FILE_PATH
    if disable_path and os.path.exists(disable_path):
        return DISABLED_BY_FILE
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.warning("Healthcheck: the database is unreachable: %s", error)
        # A broken persistent connection would otherwise fail the next probe too.
        connection.close_if_unusable_or_obsolete()
        return DATABASE_UNREACHABLE
    return None
