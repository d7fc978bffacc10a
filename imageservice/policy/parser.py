"""Glance (oslo.policy) check strings compiled into ``rules`` predicates.

Every predicate takes ``(creds, target)``: ``creds`` is the dict from
``Credentials.as_policy_dict()`` (plus ``is_admin``), ``target`` the mapping a view builds for the
object being acted on. Besides the predicate, parsing keeps a small tree of the expression so the
engine can explain which checks decided an outcome.

Not oslo.policy itself: it evaluates through its own Enforcer and context objects, not ``rules``
predicates the permission class composes, and brings oslo.config, oslo.context and oslo.utils.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import rules

Lookup = Callable[[str], "rules.Predicate | None"]

_KEYWORDS = {"and", "or", "not"}
_TEMPLATE_KEY = re.compile(r"%\(([^)]*)\)s")
_MISSING = object()


class PolicyError(Exception):
    """A rule or policy file that cannot be compiled; the message is meant for operators."""


# --- Expression tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A leaf such as ``role:admin``; ``text`` is how it was written."""

    text: str
    predicate: rules.Predicate


@dataclass(frozen=True)
class RuleRef:
    name: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Check | RuleRef | Not | And | Or


@dataclass(frozen=True)
class ParsedRule:
    check_string: str
    node: Node
    predicate: rules.Predicate
    references: frozenset[str]


# --- Leaf checks ---------------------------------------------------------------------------


def _leaf(text: str, test: Callable[[Mapping, Mapping], bool]) -> Check:
    def check(creds: Mapping, target: Mapping) -> bool:
        return bool(test(creds, target))

    return Check(text, rules.Predicate(check, name=text))


ALWAYS = _leaf("@", lambda creds, target: True)
NEVER = _leaf("!", lambda creds, target: False)


def _render(template: str, target: Mapping) -> str | None:
    """Substitute ``%(key)s`` from the target; ``None`` when a key is missing or null.

    A null target value never matches: ``member_id`` is null for images that are not shared,
    and a project that happens to be called "None" must not gain access through it.
    """
    missing = False

    def value_of(match: re.Match) -> str:
        nonlocal missing
        value = target.get(match.group(1), None) if isinstance(target, Mapping) else None
        if value is None:
            missing = True
            return ""
        return str(value)

    rendered = _TEMPLATE_KEY.sub(value_of, template)
    return None if missing else rendered


def _role_check(text: str, role: str) -> Check:
    def test(creds: Mapping, target: Mapping) -> bool:
        wanted = _render(role, target)
        held = creds.get("roles") or ()
        return wanted is not None and wanted.lower() in {str(r).lower() for r in held}

    return _leaf(text, test)


def _credential_check(text: str, key: str, match: str) -> Check:
    def test(creds: Mapping, target: Mapping) -> bool:
        wanted = _render(match, target)
        value = creds.get(key, None)
        if wanted is None or value is None:
            return False
        if isinstance(value, list | tuple | set | frozenset):
            return wanted in {str(item) for item in value}
        return str(value) == wanted

    return _leaf(text, test)


def _literal_check(text: str, literal: object, match: str) -> Check:
    # Python renders booleans as True/False, which is what `True:%(protected)s` relies on.
    expected = str(literal)

    def test(creds: Mapping, target: Mapping) -> bool:
        return _render(match, target) == expected

    return _leaf(text, test)


def _rule_reference(name: str, lookup: Lookup) -> Check:
    # Resolved on every evaluation, so a file overriding `context_is_admin` changes every rule
    # that mentions it, and rules may refer to rules defined later in the file.
    def test(creds: Mapping, target: Mapping) -> bool:
        predicate = lookup(name)
        return predicate is not None and predicate.test(creds, target)

    return _leaf(f"rule:{name}", test)


def _literal_value(kind: str) -> object:
    """The value of a quoted string, boolean or number on the left of ``:``, else ``_MISSING``."""
    try:
        value = ast.literal_eval(kind)
    except (ValueError, SyntaxError):
        return _MISSING
    return value if isinstance(value, str | bool | int | float) else _MISSING


# --- Tokenizer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "(", ")", "and", "or", "not", "check", "end"
    text: str
    position: int


class _Syntax(Exception):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _word_end(text: str, start: int) -> int:
    """Index just past a check word.

    A word may open with a quoted literal, which may hold spaces, and may contain ``%(key)s``,
    whose parentheses are not grouping. Quotes further in are ordinary characters (``O'Brien``).
    """
    i = start
    if text[i] in "'\"":
        closing = text.find(text[i], i + 1)
        if closing == -1:
            raise _Syntax("unterminated quote", i)
        i = closing + 1
    while i < len(text):
        char = text[i]
        if text.startswith("%(", i):
            closing = text.find(")", i + 2)
            if closing == -1:
                raise _Syntax("unterminated '%('", i)
            i = closing + 1
        elif char.isspace() or char in "()":
            break
        else:
            i += 1
    return i


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(Token(char, char, i))
            i += 1
        else:
            end = _word_end(text, i)
            word = text[i:end]
            kind = word.lower() if word.lower() in _KEYWORDS else "check"
            tokens.append(Token(kind, word, i))
            i = end
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- Parser (precedence: parentheses > not > and > or) -------------------------------------


class _Parser:
    def __init__(self, text: str, lookup: Lookup) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.lookup = lookup
        self.references: set[str] = set()

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def unexpected(self) -> _Syntax:
        token = self.current
        if token.kind == "end":
            return _Syntax("unexpected end of rule", token.position)
        return _Syntax(f"unexpected token '{token.text}'", token.position)

    def parse(self) -> Node:
        node = self.parse_or()
        if self.current.kind != "end":
            raise self.unexpected()
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.current.kind == "or":
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while self.current.kind == "and":
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Node:
        if self.current.kind == "not":
            self.advance()
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        token = self.current
        if token.kind == "(":
            self.advance()
            node = self.parse_or()
            if self.current.kind != ")":
                if self.current.kind == "end":
                    raise _Syntax("missing ')' for '('", token.position)
                raise self.unexpected()
            self.advance()
            return node
        if token.kind == "check":
            self.advance()
            return self.parse_check(token)
        raise self.unexpected()

    def parse_check(self, token: Token) -> Node:
        text = token.text
        if text == "@":
            return ALWAYS
        if text == "!":
            return NEVER
        kind, separator, match = _split_check(text)
        if not separator:
            raise _Syntax(f"invalid check '{text}' (expected '<kind>:<value>')", token.position)
        if not kind or not match:
            raise _Syntax(f"incomplete check '{text}'", token.position)
        if kind in ("http", "https"):
            # Remote checks would make every API call wait on an outside server; refuse them
            # at start-up rather than silently denying.
            raise _Syntax(f"remote check '{text}' is not supported", token.position)
        if kind == "rule":
            self.references.add(match)
            return RuleRef(match)
        if kind == "role":
            return _role_check(text, match)
        literal = _literal_value(kind)
        if literal is not _MISSING:
            return _literal_check(text, literal, match)
        return _credential_check(text, kind, match)


def _split_check(text: str) -> tuple[str, str, str]:
    # A quoted literal on the left may itself contain ':'.
    if text[0] in "'\"":
        closing = text.index(text[0], 1)
        kind, rest = text[: closing + 1], text[closing + 1 :]
        separator = ":" if rest.startswith(":") else ""
        return kind, separator, rest[1:] if separator else rest
    return text.partition(":")


# --- Compilation ---------------------------------------------------------------------------


def compile_node(node: Node, lookup: Lookup) -> rules.Predicate:
    if isinstance(node, Check):
        return node.predicate
    if isinstance(node, RuleRef):
        return _rule_reference(node.name, lookup).predicate
    if isinstance(node, Not):
        return ~compile_node(node.operand, lookup)
    combine = operator.and_ if isinstance(node, And) else operator.or_
    return functools.reduce(combine, (compile_node(child, lookup) for child in node.operands))


def legacy_list_to_string(items: Sequence) -> str:
    """The check string equivalent to the old JSON list form (a list of lists: OR of ANDs)."""
    if not items:
        return ""
    groups = []
    for group in items:
        if not group:
            continue  # an empty inner list adds nothing to the OR
        checks = [group] if isinstance(group, str) else list(group)
        if not all(isinstance(check, str) for check in checks):
            raise TypeError("list items must be strings or lists of strings")
        texts = [_wrap(check.strip() or "@") for check in checks]
        groups.append(" and ".join(texts))
    if not groups:
        return "!"
    if len(groups) == 1:
        return groups[0]
    return " or ".join(f"({group})" if " and " in group else group for group in groups)


def _wrap(check: str) -> str:
    return f"({check})" if any(char.isspace() for char in check) else check


def parse_rule(name: str, check: object, lookup: Lookup) -> ParsedRule:
    """Compile one rule; ``check`` is a check string or the legacy list form.

    ``lookup`` returns the predicate of another rule at evaluation time. Raises ``PolicyError``
    naming the rule and, for syntax errors, the 0-based character position.
    """
    check_string = _as_check_string(name, check)
    if check_string.strip() in ("", "[]"):
        return ParsedRule(check_string, ALWAYS, ALWAYS.predicate, frozenset())
    try:
        parser = _Parser(check_string, lookup)
        node = parser.parse()
    except _Syntax as error:
        raise PolicyError(f"Rule '{name}': {error.message} at position {error.position}") from None
    predicate = compile_node(node, lookup)
    return ParsedRule(check_string, node, predicate, frozenset(parser.references))


def _as_check_string(name: str, check: object) -> str:
    if isinstance(check, str):
        return check
    if isinstance(check, list):
        try:
            return legacy_list_to_string(check)
        except TypeError as error:
            raise PolicyError(f"Rule '{name}': {error}") from None
    raise PolicyError(
        f"Rule '{name}': check string must be text or a list, not {type(check).__name__}"
    )
