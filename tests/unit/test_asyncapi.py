"""The committed AsyncAPI document is current and internally consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared import asyncapi, registry
from shared.topics import TOPICS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_contracts() -> None:
    assert DOCUMENT.read_text("utf-8") == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run `make asyncapi`"
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    document = yaml.safe_load(asyncapi.render())
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"dangling reference {ref}"
            node = node[part]


def test_every_topic_and_event_is_documented_with_its_examples() -> None:
    document = yaml.safe_load(asyncapi.render())
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == {spec.name for spec in TOPICS}
    for event in registry.registered():
        message = document["components"]["messages"][asyncapi.message_name(event)]
        assert message["examples"], event
        channel = document["channels"][event.topic.value]
        assert asyncapi.message_name(event) in channel["messages"]
