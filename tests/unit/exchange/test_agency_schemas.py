"""Agencies' JSON Schemas run at a bounded cost: regular expressions in RE2 only, no
recursion, no exponential sharing, no quadratic uniqueness check."""

from __future__ import annotations

import time
from typing import Any

import pytest

from services.exchange.domain.authorisation import schema_problem
from services.exchange.domain.schemas import (
    MAX_EXPANDED_SUBSCHEMAS,
    MAX_SCHEMA_BYTES,
    schema_refusal,
)
from services.exchange.use_cases.registers import register_data_service
from shared.errors import Invalid
from tests.unit.exchange.test_register_use_cases import terms
from tests.unit.exchange.world import PROVIDER, world

CATASTROPHIC = "^(a+)+$"


def _timed(document: Any, schema: dict[str, Any]) -> tuple[str | None, float]:
    started = time.perf_counter()
    problem = schema_problem(document, schema)
    return problem, time.perf_counter() - started


@pytest.mark.timeout(20)
def test_a_backtracking_pattern_judges_a_long_string_at_once() -> None:
    # Python's re needs about 2^40 steps for this; RE2 reads the string once.
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": CATASTROPHIC}}}

    problem, seconds = _timed({"name": "a" * 40 + "!"}, schema)

    assert problem is not None
    assert problem.startswith("name: ")
    assert "does not match" in problem
    assert seconds < 1.0
    assert schema_problem({"name": "a" * 40}, schema) is None


@pytest.mark.timeout(20)
def test_a_backtracking_property_name_pattern_judges_long_names_at_once() -> None:
    schema = {
        "type": "object",
        "patternProperties": {CATASTROPHIC: {"type": "integer"}},
        "additionalProperties": False,
    }

    problem, seconds = _timed({"a" * 40 + "!": 1}, schema)

    assert problem is not None
    assert "additional properties are not allowed" in problem
    assert seconds < 1.0
    assert schema_problem({"aaaa": 1}, schema) is None
    assert schema_problem({"aaaa": "one"}, schema) is not None


@pytest.mark.parametrize(
    ("schema", "refused_for"),
    [
        ({"type": "string", "pattern": r"(a)\1"}, "not supported (RE2"),
        ({"patternProperties": {"(?<=x)y": {}}}, "not supported (RE2"),
        ({"properties": {"x": {"pattern": "(?!a)b"}}}, "#/properties/x: pattern"),
        ({"type": "string", "pattern": "a" * 1001}, "longer than 1000"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_with_where_it_is(
    schema: dict[str, Any], refused_for: str
) -> None:
    refusal = schema_refusal(schema)

    assert refusal is not None
    assert refused_for in refusal


async def test_registering_a_schema_with_a_pattern_re2_cannot_run_is_invalid() -> None:
    w = world()
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": r"(\d)\1"}}}

    with pytest.raises(Invalid) as error:
        await register_data_service(w.work, PROVIDER, terms(request_schema=schema))

    assert error.value.code == "exchange_invalid_schema"
    assert error.value.status == 422
    assert error.value.detail is not None
    assert error.value.detail.startswith("request_schema: #/properties/id: pattern")
    assert not w.work.published


def _doubling(levels: int) -> dict[str, Any]:
    """Each definition refers twice to the next: small to write, 2^levels to evaluate."""
    definitions: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(levels)
    }
    definitions[f"d{levels}"] = {"type": "string"}
    return {"$defs": definitions, "$ref": "#/$defs/d0"}


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "refused_for"),
    [
        ({"$ref": "#"}, "recursive schemas are not accepted"),
        (
            {"properties": {"child": {"$ref": "#"}}},
            "recursive schemas are not accepted",
        ),
        (_doubling(30), f"more than {MAX_EXPANDED_SUBSCHEMAS} subschemas"),
        ({"$ref": "https://schemas.example/remote.json"}, "points outside the schema"),
        ({"$dynamicRef": "#meta"}, "$dynamicRef is not accepted"),
        ({"$ref": "#/$defs/missing"}, "names nothing"),
        ({"description": "x" * MAX_SCHEMA_BYTES}, f"larger than {MAX_SCHEMA_BYTES} bytes"),
        (_nested(40), "nested deeper than 32"),
        (
            {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
            "unevaluatedProperties is not accepted together with patternProperties",
        ),
    ],
)
def test_a_schema_of_unbounded_cost_is_refused(schema: dict[str, Any], refused_for: str) -> None:
    refusal = schema_refusal(schema)

    assert refusal is not None
    assert refused_for in refusal


def test_a_schema_stored_before_these_rules_is_never_run() -> None:
    # Without the check, following `#` from `#` recurses until the interpreter gives up.
    problem = schema_problem({"x": 1}, {"$ref": "#"})

    assert problem is not None
    assert problem.startswith("the data service's schema is not accepted: ")


def test_shared_definitions_and_ordinary_schemas_are_accepted() -> None:
    schema = {
        "type": "object",
        "$defs": {"code": {"type": "string", "pattern": "^[0-9]{10}$"}},
        "properties": {
            "national_id": {"$ref": "#/$defs/code"},
            "spouse_id": {"$ref": "#/$defs/code"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/code"}, "uniqueItems": True},
        },
        "required": ["national_id"],
    }

    assert schema_refusal(schema) is None
    assert schema_problem({"national_id": "0012345678", "children": []}, schema) is None
    assert schema_problem({"national_id": "12"}, schema) == (
        "national_id: '12' does not match '^[0-9]{10}$'"
    )
    assert schema_problem({"national_id": "0012345678", "children": ["1" * 10] * 2}, schema) == (
        "children: has non-unique elements"
    )


@pytest.mark.timeout(60)
def test_unique_items_over_many_objects_costs_linear_time() -> None:
    # Comparing every pair, 5,000 objects take about a minute.
    items = [{"n": index, "tags": ["a", "b"]} for index in range(5_000)]

    problem, seconds = _timed(items, {"type": "array", "uniqueItems": True})

    assert problem is None
    assert seconds < 2.0
    assert schema_problem([*items, {"tags": ["a", "b"], "n": 4_999}], {"uniqueItems": True})


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([1, 1.0], False),  # the same number
        ([1, True], True),  # a number is not a boolean
        ([0, False], True),
        ([{"a": [1, 2]}, {"a": [2, 1]}], True),
        ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),
        ([None, "null"], True),
    ],
)
def test_unique_items_keeps_json_schemas_equality(items: list[Any], unique: bool) -> None:
    assert (schema_problem(items, {"uniqueItems": True}) is None) is unique


def test_format_is_an_annotation_and_runs_no_regular_expression() -> None:
    assert schema_problem({"x": "(a+)+$("}, {"properties": {"x": {"format": "regex"}}}) is None
