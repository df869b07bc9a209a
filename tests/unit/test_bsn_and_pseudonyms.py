"""BSN 11-test, pseudonyms and field encryption (agreement art 11.1: pseudonymisation, encryption)."""

from __future__ import annotations

import random
import re

import pytest
from cryptography.exceptions import InvalidTag

from shared.privacy.bsn import is_valid_bsn, synthetic_bsn
from shared.privacy.crypto import FieldCipher
from shared.privacy.pseudonym import PSEUDONYM_PATTERN, Pseudonymiser

KEY_A = "a1" * 32
KEY_B = "b2" * 32


# -- the 11-test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999999990", "012345672"])
def test_known_valid_bsns_pass_the_eleven_test(bsn):
    assert is_valid_bsn(bsn)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("123456789", id="checksum-off-by-one"),
        pytest.param("111222334", id="last-digit-changed"),
        pytest.param("12345678", id="eight-digits"),
        pytest.param("1234567820", id="ten-digits"),
        pytest.param("", id="empty"),
        pytest.param("12345678a", id="letter"),
        pytest.param("123 45678", id="space"),
        pytest.param("123456782\n", id="trailing-newline"),
        pytest.param(" 123456782", id="leading-space"),
        pytest.param("000000000", id="all-zeros"),
        pytest.param("\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0662", id="arabic-indic-digits"),
        pytest.param("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff12", id="fullwidth-digits"),
        pytest.param("12345678²", id="superscript-digit"),
    ],
)
def test_invalid_bsns_fail_the_eleven_test(value):
    assert not is_valid_bsn(value)


@pytest.mark.parametrize("value", [123456782, None, b"123456782"])
def test_non_strings_are_not_valid_bsns(value):
    assert not is_valid_bsn(value)


def test_every_single_digit_change_of_a_valid_bsn_is_detected():
    bsn = "123456782"
    for position in range(9):
        for digit in "0123456789":
            changed = bsn[:position] + digit + bsn[position + 1:]
            if changed != bsn:
                assert not is_valid_bsn(changed), changed


def test_synthetic_bsns_are_always_valid_nine_digit_strings():
    rng = random.Random(42)
    numbers = [synthetic_bsn(rng) for _ in range(500)]
    assert all(is_valid_bsn(n) and len(n) == 9 and n.isascii() and n.isdigit() for n in numbers)
    assert len(set(numbers)) > 490


def test_synthetic_bsn_is_reproducible_from_the_seed():
    assert synthetic_bsn(random.Random(7)) == synthetic_bsn(random.Random(7))


# -- pseudonyms -------------------------------------------------------------------------------------


def test_pseudonym_is_deterministic_for_one_key():
    assert Pseudonymiser(KEY_A)("123456782") == Pseudonymiser(KEY_A)("123456782")


def test_pseudonym_differs_per_key():
    assert Pseudonymiser(KEY_A)("123456782") != Pseudonymiser(KEY_B)("123456782")


def test_pseudonym_differs_per_bsn():
    p = Pseudonymiser(KEY_A)
    assert p("123456782") != p("111222333")


@pytest.mark.parametrize("bsn", ["123456782", "111222333", "999999990"])
def test_pseudonym_matches_the_pattern_and_never_contains_the_bsn(bsn):
    pseudonym = Pseudonymiser(KEY_A)(bsn)
    assert re.fullmatch(PSEUDONYM_PATTERN, pseudonym)
    assert bsn not in pseudonym
    assert not any(ch.isdigit() and ch not in "234567" for ch in pseudonym[4:])


def test_pseudonymiser_refuses_a_short_key():
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonymiser("ab" * 16)


def test_pseudonymiser_repr_hides_the_key():
    text = repr(Pseudonymiser(KEY_A))
    assert KEY_A not in text and "a1a1" not in text


# -- field encryption ------------------------------------------------------------------------------


def test_field_cipher_round_trips_a_document():
    cipher = FieldCipher(KEY_A)
    value = {"bsn": "123456782", "given_name": "Fenna", "nested": {"n": 1}}
    blob = cipher.encrypt(value, "record-1")
    assert cipher.decrypt(blob, "record-1") == value


def test_field_cipher_ciphertext_does_not_contain_the_plaintext():
    blob = bytes(FieldCipher(KEY_A).encrypt({"bsn": "123456782"}, "record-1"))
    assert b"123456782" not in blob


def test_field_cipher_uses_a_fresh_nonce_each_time():
    cipher = FieldCipher(KEY_A)
    assert bytes(cipher.encrypt({"a": 1}, "r")) != bytes(cipher.encrypt({"a": 1}, "r"))


def test_field_cipher_refuses_a_ciphertext_moved_to_another_record():
    cipher = FieldCipher(KEY_A)
    blob = cipher.encrypt({"bsn": "123456782"}, "record-1")
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, "record-2")


def test_field_cipher_refuses_another_key():
    blob = FieldCipher(KEY_A).encrypt({"bsn": "123456782"}, "record-1")
    with pytest.raises(InvalidTag):
        FieldCipher(KEY_B).decrypt(blob, "record-1")


def test_field_cipher_refuses_a_tampered_ciphertext():
    cipher = FieldCipher(KEY_A)
    blob = bytearray(bytes(cipher.encrypt({"bsn": "123456782"}, "record-1")))
    blob[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        cipher.decrypt(bytes(blob), "record-1")


def test_field_cipher_refuses_an_unknown_version():
    cipher = FieldCipher(KEY_A)
    blob = bytes(cipher.encrypt({"a": 1}, "r"))
    with pytest.raises(ValueError, match="version"):
        cipher.decrypt(b"\x02" + blob[1:], "r")


@pytest.mark.parametrize("key", ["ab" * 16, "ab" * 33, ""])
def test_field_cipher_refuses_a_key_that_is_not_32_bytes(key):
    with pytest.raises(ValueError, match="32 bytes"):
        FieldCipher(key)


def test_field_cipher_repr_hides_the_key():
    text = repr(FieldCipher(KEY_A))
    assert KEY_A not in text and "a1a1" not in text
    assert "hidden" in text
