"""Generates the AsyncAPI 3 document of every topic from the topic specs and the registry.

`docs/asyncapi.yaml` is this module's output, committed so analysts and agencies can read
it without running anything; a test fails when the committed copy is stale
(`make asyncapi` refreshes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from shared.envelope import Envelope, Event
from shared.outbox import ProgressMarker
from shared.principals import Principal
from shared.registry import example_envelopes, on_topic
from shared.topics import TOPICS, Topic, TopicSpec

KAFKA_BINDING_VERSION = "0.5.0"

TRACE_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Kafka record headers every event carries.",
    "properties": {
        "event-id": {"type": "string", "format": "uuid"},
        "event-type": {"type": "string"},
        "schema-version": {"type": "string", "pattern": "^[0-9]+$"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context."},
        "tracestate": {"type": "string", "description": "W3C trace context."},
    },
    "required": ["event-id", "event-type", "schema-version", "content-type"],
}

DEAD_LETTER_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The original record's headers, and why and where it was refused.",
    "properties": {
        "dlq-reason": {"type": "string"},
        "dlq-topic": {"type": "string"},
        "dlq-partition": {"type": "string"},
        "dlq-offset": {"type": "string"},
        "dlq-consumer": {"type": "string"},
        "dlq-at": {"type": "string", "format": "date-time"},
        "dlq-original-at": {
            "type": "string",
            "format": "date-time",
            "description": "When the original record reached the broker.",
        },
    },
    "required": ["dlq-reason", "dlq-topic", "dlq-partition", "dlq-offset", "dlq-consumer"],
}


DEAD_LETTER_MESSAGE: dict[str, Any] = {
    "name": "DeadLetter",
    "title": "A refused record",
    "summary": "The original record's bytes, unchanged, with the reason in headers.",
    "contentType": "application/octet-stream",
    "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
    "payload": {"type": "string", "format": "binary"},
}

PROGRESS_MESSAGE: dict[str, Any] = {
    "name": "ProgressMarker",
    "title": "An outbox relay's progress",
    "summary": (ProgressMarker.__doc__ or "").strip(),
    "contentType": "application/json",
    "payload": {"$ref": "#/components/schemas/ProgressMarker"},
}

# The version of the event contracts as a whole; raise it when a topic or event changes.
CONTRACTS_VERSION = "2.1.0"


def message_name(event: type[Event]) -> str:
    return f"{event.event_type}.v{event.schema_version}"


def _message(event: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    model = Envelope[event]  # type: ignore[valid-type]
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[f"{message_name(event)}.envelope"] = schema
    return {
        "name": event.event_type,
        "title": f"{event.event_type} v{event.schema_version}",
        "summary": (event.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/EventHeaders"},
        "payload": {"$ref": f"#/components/schemas/{message_name(event)}.envelope"},
        "examples": [
            {"name": f"example-{index}", "payload": example.model_dump(mode="json")}
            for index, example in enumerate(example_envelopes(event), start=1)
        ],
    }


def _channel(spec: TopicSpec, messages: dict[str, Any]) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": spec.name,
        "description": spec.description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
        "bindings": {
            "kafka": {
                "partitions": spec.partitions,
                "replicas": 1,
                "topicConfiguration": {
                    "cleanup.policy": [spec.cleanup_policy],
                    "retention.ms": spec.retention_ms if spec.retention_ms is not None else -1,
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-key": spec.key,
        "x-producers": [principal.value for principal in spec.producers],
        "x-consumers": [principal.value for principal in spec.consumers],
        "x-internal": spec.internal,
    }
    if spec.development_only:
        channel["x-development-only"] = True
    if spec.broker_timestamps:
        # Each record's timestamp is the broker's (message.timestamp.type LogAppendTime).
        channel["x-broker-timestamps"] = True
    if spec.dead_letter is not None:
        channel["x-dead-letter"] = spec.dead_letter
    if spec.per_agency:
        channel["parameters"] = {
            "agency": {
                "description": (
                    "The agency's code: one topic per agency, made when the catalog registers "
                    "it. `agency` among x-producers or x-consumers is that agency's principal "
                    "(`agency-<code>`), and no other agency may read or write it."
                )
            }
        }
    return channel


def _who(verb: str, principals: Sequence[Principal]) -> str:
    if not principals:
        return f"{verb} by no principal but the platform team's admin."
    return f"{verb} by {', '.join(principal.value for principal in principals)} only."


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    schemas: dict[str, Any] = {
        "EventHeaders": TRACE_HEADERS_SCHEMA,
        "DeadLetterHeaders": DEAD_LETTER_HEADERS_SCHEMA,
        "ProgressMarker": ProgressMarker.model_json_schema(),
    }
    messages: dict[str, Any] = {"DeadLetter": DEAD_LETTER_MESSAGE}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    dead_letter_topics = {spec.dead_letter for spec in TOPICS if spec.dead_letter is not None}
    for spec in TOPICS:
        on_this = {message_name(event): _message(event, schemas) for event in on_topic(spec.name)}
        if spec.name == Topic.PLATFORM_OUTBOX_PROGRESS:
            on_this["ProgressMarker"] = PROGRESS_MESSAGE
        messages.update(on_this)
        if spec.name in dead_letter_topics:
            on_this["DeadLetter"] = DEAD_LETTER_MESSAGE
        channel_id = spec.name
        channels[channel_id] = _channel(spec, on_this)
        operations[f"publish.{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": _who("Written", spec.producers),
        }
        operations[f"consume.{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": _who("Read", spec.consumers),
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Panjereh events",
            "version": CONTRACTS_VERSION,
            "description": (
                "Every Kafka topic of Panjereh, the national e-government platform: what "
                "travels on it, who produces and consumes it, and how the broker keeps it. "
                "Every event is JSON in one envelope (id, type, schema version, source, "
                "occurred-at, subject, correlation id); the record key is the subject; W3C "
                "trace context travels in headers. The broker takes only SASL/SCRAM-SHA-512 "
                "over TLS, and lets each principal do on a topic only what `x-producers` "
                "(write) and `x-consumers` (read) name it for: the ACLs are derived from "
                "the same register. Generated from `shared/topics.py`, `shared/principals.py` "
                "and the event registry; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka-secure",
                "description": (
                    "The local platform started by `make up`; TLS with the platform's own CA "
                    "(`panjereh credentials NAME` names its file)."
                ),
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "One principal per platform process, per agency, and analyst.",
                }
            },
        },
    }


def render() -> str:
    """The AsyncAPI document as YAML, byte-for-byte reproducible."""
    return yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
