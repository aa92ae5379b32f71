"""Which event types exist, in which versions, and on which topic each travels.

The registry is filled by importing the event modules listed in `shared.events`; each
event class registers itself with the `event` decorator. Decoding a record goes through
here, so an event type nobody registered is refused rather than guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import ValidationError

from shared import exact_json
from shared.envelope import Envelope, Event, peek_kind
from shared.topics import SPECS, resolve

E = TypeVar("E", bound=type[Event])

_EVENTS: dict[tuple[str, int], type[Event]] = {}


class UndecodableEvent(ValueError):
    """A record that is not a valid envelope of a registered event; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def event(cls: E) -> E:
    """Register an event class; refuses a duplicate (type, version) or an undeclared topic."""
    key = (cls.event_type, cls.schema_version)
    if key in _EVENTS and _EVENTS[key] is not cls:
        raise ValueError(f"event {key} is registered twice")
    if cls.topic not in SPECS:
        raise ValueError(f"event {key} travels on undeclared topic {cls.topic!r}")
    if SPECS[cls.topic].per_agency != (cls.agency_field is not None):
        raise ValueError(f"event {key}: agency_field is needed exactly on per-agency topics")
    _EVENTS[key] = cls
    return cls


def lookup(event_type: str, version: int) -> type[Event]:
    """The class registered for this type and version; KeyError if none is."""
    _load()
    return _EVENTS[(event_type, version)]


def registered() -> Iterator[type[Event]]:
    """Every registered event class, ordered by topic, type and version."""
    _load()
    yield from sorted(
        _EVENTS.values(), key=lambda cls: (cls.topic.value, cls.event_type, cls.schema_version)
    )


def on_topic(topic: str) -> list[type[Event]]:
    return [cls for cls in registered() if cls.topic == topic]


def decode(value: bytes | None, topic: str | None = None) -> Envelope[Event]:
    """Decode a record value into an envelope of its registered event type.

    Raises UndecodableEvent with a reason a person can act on; never anything else.
    """
    if value is None:
        raise UndecodableEvent("the record has no value")
    try:
        document = exact_json.parse(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UndecodableEvent(f"the value is not JSON: {error}") from None
    except exact_json.InexactJson as error:
        # Refused before any handler: canonical JSON, signatures and jsonb would fail later.
        raise UndecodableEvent(f"the value is not exact JSON: {error.reason}") from None
    if not isinstance(document, dict):
        raise UndecodableEvent("the value is not a JSON object")
    try:
        kind, version = peek_kind(document)
        cls = lookup(kind, version)
    except ValueError as error:
        raise UndecodableEvent(str(error)) from None
    except KeyError:
        raise UndecodableEvent(
            f"no event {document.get('type')!r} version {document.get('schema_version')!r} "
            "is registered"
        ) from None
    if topic is not None and cls.topic.value != _declared_name(topic):
        raise UndecodableEvent(f"{cls.event_type} v{cls.schema_version} does not belong on {topic}")
    try:
        envelope: Envelope[Event] = Envelope[cls].model_validate_json(value)  # type: ignore[valid-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise UndecodableEvent(f"invalid {kind} v{version}: {problems}") from None
    if topic is not None and envelope.destination != topic:
        # On an agency's channel the channel says who sent it, not the record.
        raise UndecodableEvent(
            f"wrong_channel: {cls.event_type} names {envelope.payload.channel_agency()!r}"
            f" but came on {topic}"
        )
    return envelope


def _declared_name(topic: str) -> str:
    """The declared name (a per-agency family's, for an agency's topic) of a topic."""
    try:
        return resolve(topic)[0].name
    except KeyError:
        return topic


def _load() -> None:
    # Importing the package imports every event module, which registers its events.
    import shared.events  # noqa: F401


def example_envelopes(cls: type[Event]) -> list[Envelope[Any]]:
    """The documented examples of an event class, each inside an example envelope."""
    extra = cls.model_config.get("json_schema_extra")
    examples = extra.get("examples", []) if isinstance(extra, dict) else []
    assert isinstance(examples, list)
    # Examples are documented as JSON, so they are validated as JSON (strict mode accepts
    # ISO strings for dates there, as it does on the wire).
    return [
        Envelope[cls].example(cls.model_validate_json(json.dumps(item)))  # type: ignore[valid-type]
        for item in examples
    ]
