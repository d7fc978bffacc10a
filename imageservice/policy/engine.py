"""The policy in force: Glance's defaults overlaid by the operator's policy file.

Every rule is compiled once into a ``rules.RuleSet``. Anything wrong with the rules or the file
raises ``PolicyError`` while building, which the ``imageservice.E010`` system check reports at
start-up instead of letting a request find it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import rules
import yaml
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from imageservice.identity.credentials import Credentials
from imageservice.policy.defaults import DEFAULT_RULES
from imageservice.policy.parser import (
    And,
    Check,
    Node,
    Not,
    ParsedRule,
    PolicyError,
    RuleRef,
    parse_rule,
)

__all__ = ["Decision", "Policy", "PolicyError", "get_policy", "reset_policy"]

logger = logging.getLogger(__name__)

Source = Literal["default", "file"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    check_string: str
    source: Source
    deciding_checks: list[str] = field(default_factory=list)


class Policy:
    def __init__(
        self,
        policy_file: str | Path | None = None,
        defaults: Mapping[str, str] = DEFAULT_RULES,
    ) -> None:
        """Build from ``defaults`` and ``policy_file`` (``None``: ``settings.POLICY_FILE``).

        An empty path means no file. Raises ``PolicyError`` on any problem.
        """
        if policy_file is None:
            policy_file = settings.POLICY_FILE
        sources: dict[str, tuple[object, Source]] = {
            name: (check, "default") for name, check in defaults.items()
        }
        if policy_file:
            for name, check in load_policy_file(Path(policy_file)).items():
                sources[name] = (check, "file")
        self._ruleset = rules.RuleSet()
        self._parsed: dict[str, ParsedRule] = {}
        self._sources: dict[str, Source] = {}
        for name, (check, source) in sources.items():
            self._parsed[name] = parse_rule(name, check, self._ruleset.get)
            self._sources[name] = source
        _check_references(self._parsed)
        for name, parsed in self._parsed.items():
            self._ruleset[name] = parsed.predicate

    @property
    def rules(self) -> Mapping[str, tuple[str, Source]]:
        """Rule name → (check string, ``"default"`` or ``"file"``)."""
        return MappingProxyType(
            {name: (p.check_string, self._sources[name]) for name, p in self._parsed.items()}
        )

    def authorize(self, rule_name: str, creds: Credentials, target: Mapping[str, object]) -> bool:
        """Whether ``creds`` pass ``rule_name`` on ``target``.

        An unknown ``rule_name`` raises ``KeyError``: that is a typo in a view, not a refusal.
        """
        if rule_name not in self._ruleset:
            raise KeyError(rule_name)
        return self._ruleset.test_rule(rule_name, self.policy_credentials(creds), target)

    def explain(self, rule_name: str, creds: Credentials, target: Mapping[str, object]) -> Decision:
        """The outcome of ``rule_name`` and the leaf checks that produced it."""
        parsed = self._parsed[rule_name]
        allowed, deciding = self._evaluate(parsed.node, self.policy_credentials(creds), target)
        return Decision(
            allowed=allowed,
            rule=rule_name,
            check_string=parsed.check_string,
            source=self._sources[rule_name],
            deciding_checks=deciding,
        )

    def is_admin(self, creds: Credentials) -> bool:
        """Glance's ``context.is_admin``: the same flag `is_admin:` checks see."""
        return bool(self.policy_credentials(creds)["is_admin"])

    def policy_credentials(self, creds: Credentials) -> dict[str, object]:
        values = creds.as_policy_dict()
        # Unlike today's Glance, where `is_admin` is missing from the policy credentials and
        # `is_admin:True` (still shown in its admin guide) is always false, we fill it from
        # `context_is_admin` so such operator rules mean what they say. Glance derives the flag
        # from the caller's own credentials, so they serve as the target too.
        values["is_admin"] = self._ruleset.test_rule("context_is_admin", values, dict(values))
        return values

    def _evaluate(self, node: Node, creds: dict, target: Mapping) -> tuple[bool, list[str]]:
        if isinstance(node, Check):
            return node.predicate.test(creds, target), [node.text]
        if isinstance(node, RuleRef):
            return self._evaluate(self._parsed[node.name].node, creds, target)
        if isinstance(node, Not):
            allowed, deciding = self._evaluate(node.operand, creds, target)
            return not allowed, deciding
        # Short-circuit like the predicates do: the first operand that settles the outcome
        # decides alone; otherwise every operand contributed.
        settles = not isinstance(node, And)
        deciding: list[str] = []
        for operand in node.operands:
            allowed, checks = self._evaluate(operand, creds, target)
            if allowed == settles:
                return allowed, checks
            deciding.extend(checks)
        return not settles, deciding


def _check_references(parsed: Mapping[str, ParsedRule]) -> None:
    for name, rule in parsed.items():
        for reference in sorted(rule.references):
            if reference not in parsed:
                raise PolicyError(f"Rule '{name}': references unknown rule '{reference}'")
    acyclic: set[str] = set()
    for name in parsed:
        _check_cycle(name, parsed, [], acyclic)


def _check_cycle(
    name: str, parsed: Mapping[str, ParsedRule], path: list[str], acyclic: set[str]
) -> None:
    # A cycle would otherwise surface as a RecursionError in the middle of a request.
    if name in acyclic:
        return
    if name in path:
        cycle = " -> ".join([*path[path.index(name) :], name])
        raise PolicyError(f"Rule '{name}': circular reference {cycle}")
    for reference in sorted(parsed[name].references):
        _check_cycle(reference, parsed, [*path, name], acyclic)
    acyclic.add(name)


def load_policy_file(path: Path) -> dict[str, object]:
    """Rules from a YAML or (deprecated) JSON policy file, told apart by their content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"Policy file '{path}' cannot be read: {error}") from None
    if text.lstrip().startswith("{"):
        logger.warning("Policy file '%s' is JSON, which is deprecated; convert it to YAML", path)
        content = _load_json(path, text)
    else:
        content = _load_yaml(path, text)
    if content is None:
        return {}
    if not isinstance(content, dict) or not all(isinstance(key, str) for key in content):
        raise PolicyError(f"Policy file '{path}' must map rule names to check strings")
    return content


def _load_json(path: Path, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(f"Policy file '{path}' is not valid JSON: {error}") from None


def _load_yaml(path: Path, text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"Policy file '{path}' is not valid YAML: {error}") from None


# --- The process-wide policy ---------------------------------------------------------------

_policy: Policy | None = None
_lock = threading.Lock()


def get_policy() -> Policy:
    """The policy built from the current settings, built on first use and then kept."""
    global _policy
    with _lock:
        if _policy is None:
            _policy = Policy()
        return _policy


def reset_policy() -> None:
    """Forget the built policy; the next ``get_policy()`` reads the file again."""
    global _policy
    with _lock:
        _policy = None


@receiver(setting_changed)
def _reset_on_policy_file_change(*, setting: str, **kwargs: object) -> None:
    if setting == "POLICY_FILE":
        reset_policy()
