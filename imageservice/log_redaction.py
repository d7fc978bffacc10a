"""No secret reaches a log: a filter on the log handlers that blanks the configured secrets,
credentials written into URLs and token headers in every record, whichever library wrote it
(swiftclient, botocore, keystoneauth and urllib3 log requests at DEBUG).

The messages our own code writes name no secret (tests/test_secrets_at_rest.py); this is the
net under third-party messages and exception texts.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cache

from django.conf import settings

MASK = "***"
# Shorter values would blank ordinary words in unrelated messages.
MIN_SECRET_LENGTH = 6
SECRET_OPTION = re.compile(r"(key|password|secret|token)$", re.IGNORECASE)
# Options whose value is named like a secret but is not one (shown in errors on purpose).
NOT_SECRET = frozenset({"s3_store_access_key"})
URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@:]+:[^/\s@]+@", re.I)
TOKEN_HEADER = re.compile(
    r"(?P<name>\b(?:X-(?:Auth|Subject|Service|Storage)-Token|X-Auth-Key|Authorization)"
    r"['\"]?\s*[:=]\s*b?['\"]?)[^\s'\",}]+",
    re.IGNORECASE,
)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact(text: str) -> str:
    for secret in configured_secrets():
        text = text.replace(secret, MASK)
    text = URL_CREDENTIALS.sub(lambda match: f"{match['scheme']}{MASK}@", text)
    return TOKEN_HEADER.sub(lambda match: f"{match['name']}{MASK}", text)


@cache
def configured_secrets() -> tuple[str, ...]:
    """The secret values of this process's configuration, longest first."""
    found = {settings.SECRET_KEY}
    for options in settings.ENABLED_BACKENDS.values():
        if isinstance(options, dict):
            found |= {
                value
                for name, value in options.items()
                if SECRET_OPTION.search(name) and name not in NOT_SECRET
            }
    for section in (settings.KEYSTONE_AUTHTOKEN, settings.OSLO_LIMIT):
        found |= {value for name, value in section.items() if SECRET_OPTION.search(name)}
    found |= {
        value
        for name, value in os.environ.items()
        if name.startswith("DEMO_") and name.endswith(("_PASSWORD", "_TOKEN"))
    }
    kept = {value for value in found if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))
