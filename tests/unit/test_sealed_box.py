"""Messages sealed to a recipient's public key (shared/sealed_box.py)."""

from __future__ import annotations

import base64

import pytest

from shared.sealed_box import OpenError, OpeningKey, SealedBox, SealingKey, new_key_pair

TEXT = b"Your Panjereh sign-in code: 482913"


def pair() -> tuple[SealingKey, OpeningKey]:
    private, public = new_key_pair()
    return SealingKey(public), OpeningKey(private)


def sealed_for_message_1() -> tuple[SealedBox, OpeningKey]:
    """TEXT sealed to a new key for message-1, and the key that opens it."""
    sealing, opening = pair()
    return sealing.seal(TEXT, binding="message-1"), opening


def altered(box: SealedBox, index: int) -> SealedBox:
    raw = bytearray(base64.b64decode(box.ciphertext))
    raw[index] ^= 0x01
    return box.model_copy(update={"ciphertext": base64.b64encode(bytes(raw)).decode()})


def test_a_box_opens_to_what_was_sealed_and_holds_nothing_of_it_in_clear() -> None:
    sealing, opening = pair()
    box = sealing.seal(TEXT, binding="message-1")
    assert opening.open(box, binding="message-1") == TEXT
    assert box.recipient == sealing.key_id == opening.key_id
    assert b"482913" not in base64.b64decode(box.ciphertext)
    assert "482913" not in box.model_dump_json()


def test_sealing_the_same_text_twice_gives_unrelated_boxes() -> None:
    sealing, _ = pair()
    first = sealing.seal(TEXT, binding="message-1")
    second = sealing.seal(TEXT, binding="message-1")
    assert first.ciphertext[:44] != second.ciphertext[:44]  # a fresh ephemeral key each


def test_another_key_does_not_open_a_box_and_says_so() -> None:
    sealing, _ = pair()
    _, stranger = pair()
    box = sealing.seal(TEXT, binding="message-1")
    with pytest.raises(OpenError, match="sealed to key"):
        stranger.open(box, binding="message-1")


def test_another_key_claiming_the_recipients_id_still_does_not_open_it() -> None:
    sealing, _ = pair()
    _, stranger = pair()
    box = sealing.seal(TEXT, binding="message-1").model_copy(update={"recipient": stranger.key_id})
    with pytest.raises(OpenError, match="does not open"):
        stranger.open(box, binding="message-1")


@pytest.mark.parametrize("index", [0, 31, 32, 40, -1], ids=lambda i: f"byte {i}")
def test_a_tampered_box_does_not_open(index: int) -> None:
    box, opening = sealed_for_message_1()
    with pytest.raises(OpenError, match="does not open"):
        opening.open(altered(box, index), binding="message-1")


def test_a_truncated_or_garbled_box_does_not_open() -> None:
    box, opening = sealed_for_message_1()
    for ciphertext in (box.ciphertext[:40], "AAAA", "not base64!"):
        with pytest.raises(OpenError):
            opening.open(box.model_copy(update={"ciphertext": ciphertext}), binding="message-1")


def test_a_box_moved_to_another_message_does_not_open() -> None:
    box, opening = sealed_for_message_1()
    with pytest.raises(OpenError, match="message-2 does not open"):
        opening.open(box, binding="message-2")


def test_a_public_key_is_the_private_keys_and_keys_are_checked() -> None:
    private, public = new_key_pair()
    assert OpeningKey(private).public == public
    for bad in ("", "not base64", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match=r"base64|32 bytes"):
            SealingKey(bad)
        with pytest.raises(ValueError, match=r"base64|32 bytes"):
            OpeningKey(bad)


def test_keys_do_not_show_themselves() -> None:
    private, public = new_key_pair()
    assert private not in repr(OpeningKey(private))
    assert repr(SealingKey(public)).startswith("SealingKey(key_id=")
