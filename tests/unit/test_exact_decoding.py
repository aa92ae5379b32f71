"""Events JSON cannot carry exactly are refused at decode, with the reason."""

from __future__ import annotations

import json

import pytest

from shared.events.exchange import DataRequested
from shared.registry import UndecodableEvent, decode, example_envelopes


def requested_with(payload_text: str) -> tuple[bytes, str]:
    """A valid DataRequested record whose free-form payload is `payload_text` (raw JSON)."""
    envelope = example_envelopes(DataRequested)[0]
    document = json.loads(envelope.to_bytes())
    document["payload"]["payload"] = {"marker": "here"}
    raw = json.dumps(document).replace('{"marker": "here"}', payload_text)
    return raw.encode(), envelope.destination


def test_a_valid_free_form_payload_still_decodes() -> None:
    value, topic = requested_with('{"national_id": "0012345678", "count": 9007199254740991}')
    decoded = decode(value, topic).payload
    assert isinstance(decoded, DataRequested)
    assert decoded.payload["count"] == 9007199254740991


@pytest.mark.parametrize(
    "payload_text",
    [
        '{"count": 9007199254740993}',
        '{"count": -18446744073709551616}',
        '{"count": 1' + "0" * 5000 + "}",
        '{"ratio": NaN}',
        '{"ratio": Infinity}',
        '{"ratio": 1e400}',
        '{"name": "a\\u0000b"}',
        '{"name": "\\ud800"}',
    ],
    ids=["2^53+1", "-2^64", "5000-digits", "nan", "infinity", "overflow", "nul", "surrogate"],
)
def test_numbers_and_strings_json_does_not_carry_exactly_are_refused_at_decode_with_the_reason(
    payload_text: str,
) -> None:
    value, topic = requested_with(payload_text)
    with pytest.raises(UndecodableEvent, match="not exact JSON"):
        decode(value, topic)
