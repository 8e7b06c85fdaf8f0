"""Signed identity: no one reads an account that is not theirs (actions/identity.py)."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import jwt
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import identity
from actions.common.accounts import identified_account
from actions.common.facts import RECORD_SLOT
from actions.diagnosis_form import ValidateDiagnosisForm
from devtools.tracker import make_tracker
from settings import ActionSettings, SettingsError, load
from tests.actions.support import ACTIVATED

SECRET = "s" * 40
OTHER_SECRET = "x" * 40


def token(
    sub: Any = "demo_account_frozen",
    secret: str = SECRET,
    exp_in: Optional[int] = 600,
    algorithm: str = "HS256",
) -> str:
    claims: Dict[str, Any] = {"sub": sub, "iat": int(time.time())}
    if exp_in is not None:
        claims["exp"] = int(time.time()) + exp_in
    return jwt.encode(claims, secret, algorithm=algorithm)


def unsigned(sub: str = "demo_account_frozen") -> str:
    """A token with alg "none": no signature at all."""
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, "", algorithm="none")


@pytest.mark.parametrize(
    "presented, expected",
    [
        (token(), "demo_account_frozen"),
        (identity.mint("demo_account_frozen", SECRET), "demo_account_frozen"),
        (token(secret=OTHER_SECRET), None),  # forged: another secret
        (token(exp_in=-10), None),  # expired
        (token(exp_in=None), None),  # no expiry at all
        (token(sub=""), None),
        (unsigned(), None),
        (token()[:-3] + "abc", None),  # tampered signature
        ("not.a.jwt", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_only_a_valid_unexpired_token_signed_with_our_secret_proves_an_account(
    presented: Any, expected: Optional[str]
) -> None:
    assert identity.verify(presented, SECRET) == expected


def test_a_token_whose_subject_was_changed_is_refused() -> None:
    header, payload, signature = token().split(".")
    other = token(sub="demo_healthy").split(".")[1]
    assert identity.verify(f"{header}.{other}.{signature}", SECRET) is None
    assert identity.verify(f"{header}.{payload}.{signature}", SECRET)


def test_without_a_secret_nobody_is_verified() -> None:
    signed = identity.mint("demo_account_frozen", "k")
    assert identity.verified_account({identity.METADATA_KEY: signed}, None) is None


def test_a_short_secret_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="IDENTITY_JWT_SECRET"):
        load(ActionSettings, {"IDENTITY_JWT_SECRET": "too-short"})


def message(metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "text": "借呗没了",
        "intent": {"name": "jiebei_entry_missing", "confidence": 0.9},
        "entities": [],
        "metadata": metadata,
    }


# The diagnosis form's first call: the user's complaint, then the form started.
STARTED = [{"event": "user"}, ACTIVATED]


@pytest.fixture
def verified_mode(monkeypatch: pytest.MonkeyPatch, seeded_db_url: str) -> None:
    monkeypatch.setenv("BOT_PROFILE", "prod")
    monkeypatch.delenv("ACCOUNT_IDENTITY", raising=False)  # prod default: verified
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {identity.METADATA_KEY: token(secret=OTHER_SECRET)},
        {identity.METADATA_KEY: token(exp_in=-10)},
        {identity.METADATA_KEY: unsigned()},
        {"account_id": "demo_account_frozen"},  # a client's claim, unsigned
    ],
    ids=["no-metadata", "empty", "forged", "expired", "unsigned", "bare-claim"],
)
async def test_in_production_no_valid_token_reads_no_account_data(
    verified_mode: None, metadata: Optional[Dict[str, Any]]
) -> None:
    # the conversation id names a real account: it must not matter
    tracker = make_tracker(
        "demo_account_frozen", latest_message=message(metadata), events=STARTED
    )
    assert identified_account(tracker) is None
    dispatcher = CollectingDispatcher()
    events = await ValidateDiagnosisForm().run(dispatcher, tracker, {})
    set_ = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert set_["facts_source"] == "user" and set_.get(RECORD_SLOT) is None
    assert "account_status" not in set_ and "sesame_score" not in set_
    assert "utter_lookup_found" not in [m["response"] for m in dispatcher.messages]


async def test_in_production_a_valid_token_reads_its_own_account(
    verified_mode: None,
) -> None:
    metadata = {identity.METADATA_KEY: token(sub="demo_account_frozen")}
    tracker = make_tracker(
        "any-session-id", latest_message=message(metadata), events=STARTED
    )
    assert identified_account(tracker) == "demo_account_frozen"
    dispatcher = CollectingDispatcher()
    events = await ValidateDiagnosisForm().run(dispatcher, tracker, {})
    set_ = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert set_["facts_source"] == "store"
    assert set_[RECORD_SLOT]["account_status"] == "frozen"


def test_demo_profile_trusts_the_conversation_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BOT_PROFILE", raising=False)
    monkeypatch.delenv("ACCOUNT_IDENTITY", raising=False)
    tracker = make_tracker("demo_account_frozen", latest_message=message(None))
    assert identified_account(tracker) == "demo_account_frozen"
