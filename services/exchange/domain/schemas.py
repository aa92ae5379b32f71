"""Agencies' JSON Schemas: judged before they are accepted, applied at a bounded cost.

A provider's request and response schemas are untrusted input that the exchange runs
against every payload on its event loop. So:

- every regular expression in them (`pattern`, the names in `patternProperties`) runs
  only in RE2, which matches in time linear in its input and never backtracks; one RE2
  cannot take is refused when the schema is registered, and never reaches Python's `re`
  (which takes a second for `^(a+)+$` against 25 characters, doubling per character);
- a schema is bounded in size and depth, refers only inside itself (`$ref` to `#…`), has
  no cycle of references (one that comes back without descending into the payload would
  recurse until the interpreter gives up), and, with its references followed, holds a
  bounded number of subschemas (a few shared definitions referred to twice each would
  otherwise cost 2^n evaluations);
- `uniqueItems` is judged by hashing, in linear time, not by comparing every pair;
- `format` is an annotation only, as JSON Schema 2020-12 makes it by default: no format
  checker (and none of its regular expressions) runs on payloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import re2
from jsonschema.protocols import Validator

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
# Subschemas with every `$ref` followed: what one payload node can cost at most.
MAX_EXPANDED_SUBSCHEMAS = 2_000
# How deeply subschemas nest with references followed: the validator recurses that deep.
MAX_EXPANDED_DEPTH = 64
MAX_PATTERN_LENGTH = 1_000
# RE2's memory for one compiled pattern; a pattern that needs more is refused.
RE2_MAX_MEMORY = 1 << 20

# Keywords whose value is one subschema, a list of them, or a map of names to them.
_ONE = (
    "additionalProperties",
    "additionalItems",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "unevaluatedItems",
    "unevaluatedProperties",
    "items",
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = RE2_MAX_MEMORY
    options.log_errors = False
    return options


_OPTIONS = _re2_options()


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    """The pattern compiled by RE2 (re2.error if RE2 cannot take it); kept, as schemas
    are applied again and again."""
    return re2.compile(pattern, _OPTIONS)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 cannot run `pattern`, or None when it can."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"a pattern longer than {MAX_PATTERN_LENGTH} characters"
    try:
        _compiled(pattern)
    except re2.error as error:
        return f"pattern {pattern!r} is not supported (RE2: {_message(error)})"
    return None


def _message(error: Exception) -> str:
    detail = error.args[0] if error.args else str(error)
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def _subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, subschema) for each subschema directly inside `schema`."""
    for keyword in _ONE:
        if isinstance(schema.get(keyword), dict | bool):
            yield keyword, schema[keyword]
    for keyword in _LIST:
        if isinstance(schema.get(keyword), list):
            for index, item in enumerate(schema[keyword]):
                yield f"{keyword}/{index}", item
    for keyword in _MAP:
        if isinstance(schema.get(keyword), dict):
            for name, item in schema[keyword].items():
                yield f"{keyword}/{name}", item
    dependencies = schema.get("dependencies")
    if isinstance(dependencies, dict):  # draft 7: a dependency is a schema or a list of names
        for name, item in dependencies.items():
            if isinstance(item, dict):
                yield f"dependencies/{name}", item


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests, counting no further than `limit` + 1."""
    deepest, level = 0, [value]
    while level and deepest <= limit:
        deepest += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return deepest


class _Walk:
    """One pass over a schema's subschemas: their regular expressions, their references,
    and how many subschemas a payload node can meet once references are followed."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.has_pattern_properties = False
        self.has_unevaluated_properties = False
        self._expanded: dict[str, tuple[int, int]] = {}
        self._following: set[str] = set()

    def problem(self, schema: Any, where: str) -> str | None:
        if not isinstance(schema, dict):
            return None
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in schema:
                return f"{where}: {keyword} is not accepted; use $ref within the schema"
        reference = schema.get("$ref")
        if reference is not None and not (isinstance(reference, str) and reference.startswith("#")):
            return f"{where}: $ref {reference!r} points outside the schema"
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            problem = regex_problem(pattern)
            if problem is not None:
                return f"{where}: {problem}"
        names = schema.get("patternProperties")
        if isinstance(names, dict):
            self.has_pattern_properties = True
            for name in names:
                problem = regex_problem(name)
                if problem is not None:
                    return f"{where}/patternProperties: {problem}"
        if "unevaluatedProperties" in schema:
            self.has_unevaluated_properties = True
        for step, child in _subschemas(schema):
            problem = self.problem(child, f"{where}/{step}")
            if problem is not None:
                return problem
        return None

    def expanded(self, schema: Any, depth: int = 1) -> tuple[int, int]:
        """(subschemas, levels) under `schema` with references followed; ValueError on a
        cycle, or once past either bound (`depth`: how deep `schema` itself is)."""
        if not isinstance(schema, dict):
            return 1, 1
        if depth > MAX_EXPANDED_DEPTH:
            raise ValueError(_TOO_DEEP)
        count, height = 1, 1
        reference = schema.get("$ref")
        parts = [self._referred(reference, depth)] if isinstance(reference, str) else []
        parts += [self.expanded(child, depth + 1) for _, child in _subschemas(schema)]
        for child_count, child_height in parts:
            count += child_count
            height = max(height, child_height + 1)
        if count > MAX_EXPANDED_SUBSCHEMAS:
            raise ValueError(
                f"with its references followed it holds more than "
                f"{MAX_EXPANDED_SUBSCHEMAS} subschemas"
            )
        if depth + height - 1 > MAX_EXPANDED_DEPTH:
            raise ValueError(_TOO_DEEP)
        return count, height

    def _referred(self, reference: str, depth: int) -> tuple[int, int]:
        if reference in self._expanded:
            return self._expanded[reference]
        if reference in self._following:
            raise ValueError(
                f"$ref {reference!r} refers back to itself; recursive schemas are not accepted"
            )
        self._following.add(reference)
        cost = self.expanded(_resolve(self.root, reference), depth + 1)
        self._following.discard(reference)
        self._expanded[reference] = cost
        return cost


_TOO_DEEP = f"with its references followed it nests deeper than {MAX_EXPANDED_DEPTH} levels"


def _resolve(root: Mapping[str, Any], reference: str) -> Any:
    """The part of `root` a local reference (`#`, `#/a/b`) names; ValueError if none."""
    pointer = reference[1:]
    if pointer and not pointer.startswith("/"):
        raise ValueError(f"$ref {reference!r}: only JSON pointers (#/…) are accepted")
    node: Any = root
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"$ref {reference!r} names nothing in the schema")
    return node


def _metaschema_format_checker() -> jsonschema.FormatChecker:
    """The format checker a schema is judged against its metaschema with: the usual one,
    except that `regex` means what RE2 can run (not what Python's `re` compiles)."""
    checker = jsonschema.FormatChecker(
        [name for name in jsonschema.FormatChecker.checkers if name != "regex"]
    )
    checker.checks("regex", raises=ValueError)(_is_re2_regex)
    return checker


def _is_re2_regex(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    problem = regex_problem(instance)
    if problem is not None:
        raise ValueError(problem)
    return True


_METASCHEMA_FORMATS = _metaschema_format_checker()


def schema_refusal(schema: dict[str, Any]) -> str | None:
    """Why the exchange will not run `schema` against payloads, or None when it will."""
    try:
        size = len(json.dumps(schema, ensure_ascii=False).encode())
    except (TypeError, ValueError) as error:
        return f"not JSON: {error}"
    if size > MAX_SCHEMA_BYTES:
        return f"larger than {MAX_SCHEMA_BYTES} bytes"
    if _depth(schema, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        return f"nested deeper than {MAX_SCHEMA_DEPTH} levels"
    walk = _Walk(schema)
    problem = walk.problem(schema, "#")
    if problem is not None:
        return problem
    if walk.has_pattern_properties and walk.has_unevaluated_properties:
        # jsonschema would match patternProperties with Python's re to find what is
        # unevaluated.
        return "unevaluatedProperties is not accepted together with patternProperties"
    try:
        walk.expanded(schema)
    except ValueError as error:
        return str(error)
    try:
        validator_class: Any = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema, format_checker=_METASCHEMA_FORMATS)
    except jsonschema.exceptions.SchemaError as error:
        return error.message
    return None


# The keywords that would run a pattern in Python's re, and uniqueItems, in safe forms.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{_clipped(instance)} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _compiled(pattern).search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    named = schema.get("properties", {})
    patterns = [_compiled(pattern) for pattern in schema.get("patternProperties", {})]
    extras = [
        name
        for name in instance
        if name not in named and not any(pattern.search(name) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif not additional and extras:
        listed = ", ".join(repr(name) for name in sorted(extras)[:10])
        yield jsonschema.ValidationError(f"additional properties are not allowed ({listed})")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _comparable(item)
        if key in seen:
            yield jsonschema.ValidationError("has non-unique elements")
            return
        seen.add(key)


def _comparable(value: Any) -> Any:
    """A hashable form under JSON Schema's equality: 1 and 1.0 alike, true and 1 not."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", value)  # Python's == and hash already equate 1 and 1.0
    if isinstance(value, list):
        return ("array", tuple(_comparable(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((name, _comparable(item)) for name, item in value.items()))
    return ("other", repr(value))


def _clipped(value: str, length: int = 80) -> str:
    return repr(value if len(value) <= length else value[:length] + "…")


_SAFE_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Validator | str:
    """A validator for the schema, with the safe keywords; or why there is none."""
    schema = json.loads(schema_json)
    refusal = schema_refusal(schema)
    if refusal is not None:
        return refusal
    base = jsonschema.validators.validator_for(schema)
    safe = {name: check for name, check in _SAFE_KEYWORDS.items() if name in base.VALIDATORS}
    validator_class = jsonschema.validators.extend(base, safe)  # type: ignore[no-untyped-call]
    validator: Validator = validator_class(schema)
    return validator


def document_problem(document: Any, schema: dict[str, Any]) -> str | None:
    """The first way `document` breaks `schema`, or None when it conforms.

    A schema the exchange would not accept today (stored by an older release) is a
    problem too: it is never run.
    """
    validator = _validator(json.dumps(schema, sort_keys=True))
    if isinstance(validator, str):
        return f"the data service's schema is not accepted: {validator}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"
