"""Property protections: who may create, read, update or delete which custom properties.

Glance's ``property_protection_file`` (glance-import-internals.md §5) kept as ordered
``PropertyProtection`` rows. The semantics follow Glance's:

- no rows at all: the feature is off and every custom property is free;
- otherwise sections are tried in order, their pattern applied with ``re.search``; the first
  match decides and **no match denies**, admins included (there is no admin bypass);
- an implicit ``[os_glance.*]`` section allowing everyone comes first and user sections whose
  pattern starts with ``os_glance`` are ignored, so the import machinery's properties always work.

Core attributes (``name``, ``visibility``, …) are never governed here; the API refuses
``os_glance*`` keys as reserved before protections are consulted.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from images.models import ImageProperty, PropertyProtection
from imageservice.config_syntax import split_list
from imageservice.errors import GlanceError
from imageservice.identity.credentials import Credentials
from imageservice.policy.engine import get_policy

logger = logging.getLogger(__name__)

OPERATIONS = ("create", "read", "update", "delete")
EVERYONE = "@"
NO_ONE = "!"
ROLES = PropertyProtection.RuleFormat.ROLES
POLICIES = PropertyProtection.RuleFormat.POLICIES
# Glance drops user sections starting with this and puts its own one first (LP #2085321).
GLANCE_PREFIX = "os_glance"
GLANCE_SECTION = "os_glance.*"


def split_roles(value: str) -> frozenset[str]:
    """A roles value as the set of lower-case names it lists (``@``/``!`` included)."""
    return frozenset(role.lower() for role in split_list(value))


@dataclass(frozen=True)
class Section:
    """One section: a pattern and, per operation, a roles list or a policy rule name."""

    pattern: str
    rule_format: str
    rules: Mapping[str, str]

    @classmethod
    def from_row(cls, row: PropertyProtection) -> Section:
        return cls(row.pattern, row.rule_format, {op: row.rule_for(op) for op in OPERATIONS})

    def allows(self, operation: str, credentials: Credentials) -> bool:
        value = self.rules.get(operation, "").strip()
        if self.rule_format == POLICIES and value not in ("", EVERYONE, NO_ONE):
            return _policy_allows(value, credentials)
        roles = split_roles(value)
        # An empty value lists no one; `!` wins over anything else listed (fail closed).
        if NO_ONE in roles:
            return False
        # Service-token roles count too, as in Glance (which, unlike us, also leaks them into
        # the caller's context for later checks in the same request).
        return EVERYONE in roles or bool(roles & (credentials.roles | credentials.service_roles))


def _policy_allows(rule: str, credentials: Credentials) -> bool:
    # Glance evaluates these with an empty target: only credential checks mean anything.
    try:
        return get_policy().authorize(rule, credentials, {})
    except KeyError:
        # The loader refuses unknown names, but the policy file may have changed since:
        # an unknown rule denies (as oslo.policy's `rule:` check does) rather than a 500.
        logger.error("Property protection names unknown policy rule %r; denying", rule)
        return False


_EVERYTHING = Section(GLANCE_SECTION, ROLES, dict.fromkeys(OPERATIONS, EVERYONE))


class PropertyRules:
    """The ordered sections in force; ``enabled`` is False when no section was configured."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.enabled = bool(sections)
        kept = [s for s in sections if not s.pattern.startswith(GLANCE_PREFIX)]
        self.sections = [_EVERYTHING, *kept] if self.enabled else []
        self._compiled = [_compile(section.pattern) for section in self.sections]
        self._broken = [
            s for s, regex in zip(self.sections, self._compiled, strict=True) if not regex
        ]

    @classmethod
    def from_database(cls) -> PropertyRules:
        return cls([Section.from_row(row) for row in PropertyProtection.objects.all()])

    def section_for(self, name: str) -> Section | None:
        """The first section whose pattern is found in ``name`` (search, not match)."""
        for section, regex in zip(self.sections, self._compiled, strict=True):
            if regex is None or regex.search(name):
                return section
        return None

    def can(self, operation: str, name: str, credentials: Credentials) -> bool:
        """Whether ``credentials`` may ``operation`` the custom property ``name``."""
        if operation not in OPERATIONS:
            raise ValueError(f"Unknown property operation {operation!r}")
        if not self.enabled:
            return True
        section = self.section_for(name)
        if section is None or section in self._broken:
            return False
        return section.allows(operation, credentials)


def _compile(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        # The loader refuses such patterns; a row edited by hand past it fails closed: it
        # matches every name and allows nothing, rather than letting names fall through.
        logger.error("Property protection pattern %r is not a valid regular expression", pattern)
        return None


class PropertyAccess:
    """The rules bound to one caller, with each answer remembered for the request."""

    def __init__(self, rules: PropertyRules, credentials: Credentials) -> None:
        self.rules = rules
        self.credentials = credentials
        self._answers: dict[tuple[str, str], bool] = {}

    @property
    def enabled(self) -> bool:
        return self.rules.enabled

    def can(self, operation: str, name: str) -> bool:
        key = (operation, name)
        if key not in self._answers:
            self._answers[key] = self.rules.can(operation, name, self.credentials)
        return self._answers[key]

    def can_read(self, name: str) -> bool:
        return self.can("read", name)

    def require(self, operation: str, name: str) -> None:
        """403 unless the caller may ``operation`` ``name``.

        Glance answers "Attribute 'P' is reserved." to all three refusals; ours says which
        operation was refused.
        """
        if not self.can(operation, name):
            raise GlanceError(
                403, f"Property '{name}' is protected: you are not permitted to {operation} it."
            )

    def readable(self, properties: Mapping[str, str]) -> dict[str, str]:
        return {name: value for name, value in properties.items() if self.can_read(name)}

    def hidden(
        self, properties: Mapping[str, str], mentioned: Collection[str] = ()
    ) -> dict[str, str]:
        """The properties the caller cannot see and did not name: a PATCH keeps them as stored."""
        return {
            name: value
            for name, value in properties.items()
            if not self.can_read(name) and name not in mentioned
        }


# The rules as this process last read them, and until when it may trust them. Reading them on
# every request cost list pages ~8 % of their speed (docs/benchmarks.md); a change reaches
# other processes within PROPERTY_RULES_CACHE_SECONDS and this one at once (signals below).
_cached_rules: tuple[float, PropertyRules] | None = None


def current_rules() -> PropertyRules:
    global _cached_rules
    now = time.monotonic()
    if _cached_rules is not None and _cached_rules[0] > now:
        return _cached_rules[1]
    rules = PropertyRules.from_database()
    if settings.PROPERTY_RULES_CACHE_SECONDS > 0:
        _cached_rules = (now + settings.PROPERTY_RULES_CACHE_SECONDS, rules)
    return rules


@receiver([post_save, post_delete], sender=PropertyProtection)
def forget_property_rules(**kwargs) -> None:
    global _cached_rules
    _cached_rules = None


def access_for(request) -> PropertyAccess:
    """The caller's access under the current rules, computed once per request."""
    if not hasattr(request, "_property_access"):
        request._property_access = PropertyAccess(current_rules(), request.credentials)
    return request._property_access


# --- the operator's view: what a rule does, and who may do what --------------------------------

# Names a catch-all pattern must find: the empty name, a short one and a long odd one.
_CATCH_ALL_PROBES = ("", "x", "zz_Any-Property.Name:42")


def is_catch_all(pattern: str) -> bool:
    """Whether ``pattern`` matches every property name, so no name falls through to "deny"."""
    regex = _compile(pattern)
    return regex is not None and all(regex.search(probe) for probe in _CATCH_ALL_PROBES)


def _denies_everyone(section: Section | None, operation: str) -> bool:
    """No section (no match denies), or a roles value naming no one. Role lists and policy
    rules admit someone, so they do not count."""
    if section is None:
        return True
    value = section.rules.get(operation, "").strip()
    if section.rule_format == POLICIES and value not in ("", EVERYONE, NO_ONE):
        return False
    roles = split_roles(value)
    return NO_ONE in roles or not roles


@dataclass(frozen=True)
class RulePreview:
    """What saving a rule change does to the properties images hold now: the names that become
    unreadable, or unchangeable, for everyone (admins included), and on how many images."""

    unreadable: Sequence[str]
    immutable: Sequence[str]
    images: int
    has_catch_all: bool

    @property
    def harmful(self) -> bool:
        return bool(self.unreadable or self.immutable)

    def sentence(self) -> str:
        names = sorted({*self.unreadable, *self.immutable})
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        what = "unreadable" if set(names) == set(self.unreadable) else "unreadable or immutable"
        if not self.unreadable:
            what = "immutable"
        tail = (
            ""
            if self.has_catch_all
            else " There is no catch-all rule: any property no rule "
            "matches is denied to everyone, and cannot be created either."
        )
        return (
            f"After this, {len(names)} propert{'y' if len(names) == 1 else 'ies'} on "
            f"{self.images} image{'' if self.images == 1 else 's'} become {what} for everyone, "
            f"admins included: {shown}.{tail}"
        )


def preview_rules(sections: Sequence[Section]) -> RulePreview:
    """Compare ``sections`` (the rules as they would be) with the rules in force, over the
    custom properties alive images hold (one grouped query)."""
    before, after = PropertyRules.from_database(), PropertyRules(sections)
    held = (
        ImageProperty.objects.filter(image__deleted=False)
        .exclude(name__startswith=GLANCE_PREFIX)
        .values_list("name", flat=True)
        .distinct()
    )
    unreadable, immutable = [], []
    for name in held:
        was, will = before.section_for(name), after.section_for(name)
        if not before.enabled:
            was = _EVERYTHING
        if _denies_everyone(will, "read") and not _denies_everyone(was, "read"):
            unreadable.append(name)
        elif _denies_everyone(will, "update") and not _denies_everyone(was, "update"):
            immutable.append(name)
    affected = [*unreadable, *immutable]
    images = (
        ImageProperty.objects.filter(image__deleted=False, name__in=affected).aggregate(
            count=Count("image", distinct=True)
        )["count"]
        if affected
        else 0
    )
    catch_all = any(is_catch_all(section.pattern) for section in sections)
    return RulePreview(unreadable, immutable, images, catch_all)


CATCH_ALL_PATTERN = ".*"


@transaction.atomic
def save_rule(rule: PropertyProtection, *, add_catch_all: bool = False) -> PropertyProtection:
    """The console's write of one rule; with ``add_catch_all``, a ``.*`` rule letting everyone
    do everything is added after every other, so names no rule matches stay free."""
    rule.save()
    if add_catch_all:
        last = PropertyProtection.objects.aggregate(last=Max("position"))["last"] or 0
        PropertyProtection.objects.create(
            position=last + 1,
            pattern=CATCH_ALL_PATTERN,
            rule_format=ROLES,
            **{f"{operation}_rule": EVERYONE for operation in OPERATIONS},
        )
    return rule


@dataclass(frozen=True)
class PropertyAnswer:
    """Whether someone may ``operation`` a property, and which rule said so."""

    allowed: bool
    reason: str


def explain_property(operation: str, name: str, credentials: Credentials) -> PropertyAnswer:
    """The property tester: the rules in force applied to ``name`` for ``credentials``."""
    rules = current_rules()
    allowed = rules.can(operation, name, credentials)
    if not rules.enabled:
        return PropertyAnswer(
            allowed, "No rules: property protections are off, everything is allowed."
        )
    section = rules.section_for(name)
    if section is None:
        return PropertyAnswer(
            allowed, "No rule matches this name, and no match denies (there is no catch-all)."
        )
    if section is _EVERYTHING:
        return PropertyAnswer(allowed, "os_glance* properties are always free (Glance's rule).")
    value = section.rules.get(operation, "").strip() or "(empty: no one)"
    return PropertyAnswer(
        allowed,
        f"First matching rule [{section.pattern}] ({section.rule_format}): {operation} = {value}",
    )
