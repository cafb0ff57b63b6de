"""The sign-in pieces on their own: the EIP-4361 message, nonces, sessions, the auditor token, and the rejection
reasons the API gives (the demo's own words for the contract's rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from fedledger.api import siwe_message
from fedledger.api.auth import AuditorToken, NonceBook, Sessions, parse_siwe_message, recover_signer
from fedledger.api.rounds import rejection_reason
from fedledger.exceptions import BadInput

ISSUED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _message(**override: object) -> str:
    fields: dict[str, object] = {
        "domain": "127.0.0.1:8321",
        "address": Account.from_key("0x" + "11" * 32).address,
        "uri": "http://127.0.0.1:8321/",
        "chain_id": 31337,
        "nonce": "0123456789abcdef",
        "issued_at": ISSUED,
        "expiration_time": ISSUED + timedelta(minutes=5),
    }
    fields.update(override)
    return siwe_message(**fields)  # type: ignore[arg-type]


def test_the_message_is_eip_4361_and_parses_back() -> None:
    text = _message()
    assert text.splitlines()[0] == "127.0.0.1:8321 wants you to sign in with your Ethereum account:"
    assert "\nVersion: 1\nChain ID: 31337\nNonce: 0123456789abcdef\nIssued At: 2026-01-02T03:04:05Z\n" in text
    parsed = parse_siwe_message(text)
    assert (parsed.domain, parsed.chain_id, parsed.nonce, parsed.issued_at) == (
        "127.0.0.1:8321",
        31337,
        "0123456789abcdef",
        ISSUED,
    )
    key = Account.from_key("0x" + "11" * 32)
    signature = key.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
    assert recover_signer(text, signature) == key.address
    assert recover_signer(text + " ", signature) != key.address  # another text: another signer


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", "expected layout"),
        (_message().replace("Version: 1", "Version: 2"), "version"),
        (_message().replace("Nonce: ", "Nonse: "), "'Nonce'"),
        (_message(nonce="short"), "nonce"),
        (_message(address="0x" + "ab" * 20), "checksummed"),
        (_message().replace("2026-01-02T03:04:05Z", "yesterday"), "RFC 3339"),
        (_message().replace("2026-01-02T03:04:05Z", "2026-01-02T03:04:05"), "time zone"),
        (_message() + "\n" + "x" * 3000, "too long"),
    ],
)
def test_malformed_messages_are_named(text: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        parse_siwe_message(text)


def test_a_malformed_signature_is_bad_input() -> None:
    for signature in ("0x", "0x1234", "not hex", "0x" + "00" * 65):
        with pytest.raises(BadInput, match="malformed signature"):
            recover_signer(_message(), signature)


def test_nonces_are_good_once_for_their_domain_and_expire() -> None:
    book = NonceBook()
    nonce, _ = book.issue("a.example")
    with pytest.raises(BadInput, match="issued for a.example"):
        book.consume(nonce, "b.example")
    with pytest.raises(BadInput, match="already used"):  # refused once: gone
        book.consume(nonce, "a.example")
    nonce, _ = book.issue("a.example")
    book.consume(nonce, "a.example")
    with pytest.raises(BadInput, match="already used"):
        book.consume(nonce, "a.example")
    stale = NonceBook(ttl=-1)
    nonce, _ = stale.issue("a.example")
    with pytest.raises(BadInput, match="expired"):
        stale.consume(nonce, "a.example")
    small = NonceBook(limit=2)
    first = small.issue("a")[0]
    small.issue("a"), small.issue("a")  # the oldest unused nonce makes room
    with pytest.raises(BadInput):
        small.consume(first, "a")


def test_sessions_and_the_auditor_token() -> None:
    sessions = Sessions()
    token, identity = sessions.open("0xabc")
    assert sessions.get(token) == identity and sessions.get(token + "x") is None
    sessions.close(token)
    assert sessions.get(token) is None
    expired = Sessions(ttl=-1)
    assert expired.get(expired.open("0xabc")[0]) is None
    auditor = AuditorToken(" " + "t" * 40 + "\n")  # as read from a file
    assert auditor.matches("t" * 40) and not auditor.matches("t" * 39)
    with pytest.raises(BadInput, match="at least 32"):
        AuditorToken("t" * 31)


def test_rejection_reasons_say_the_contracts_rule() -> None:
    assert rejection_reason([], 4500, 0) == ("no validator scored it", None)
    assert rejection_reason([1000, 2000, 9000], 4500, 0) == (
        "median validator score 2000 below the threshold 4500 (scale 0-10000)",
        2000,
    )
    reason, score = rejection_reason([1000, 2000, 9000], 4500, 2)
    assert reason.startswith("score of its 2-th most favourable validator") and score == 2000
