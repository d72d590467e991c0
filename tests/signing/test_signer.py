"""The signer on its own: what it signs, what it refuses, and that it never shows a secret."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stem import Stem
from stem.envelope import decode, encode_fields
from stem.errors import ConfigError
from stem.signing import SignatureError, Signer, key_id_of, unsigned

SECRET1 = b"first-secret-0123456789abcdef!!"
SECRET2 = b"second-secret-0123456789abcdef!"


def envelope(job_id: str = "j1", queue: str = "default", args: list[object] | None = None) -> str:
    return encode_fields(job_id, "t", args or [1], {}, queue, 0, 1_700_000_000_000, 0, {})


def signer(current: str = "k2") -> Signer:
    return Signer({"k2": SECRET2, "k1": SECRET1}, current)


def test_a_signed_envelope_verifies_to_exactly_the_bytes_that_were_signed() -> None:
    body = envelope()
    stored = signer().sign("j1", "default", body)
    assert json.loads(stored)["kid"] == "k2"
    assert signer().verify("j1", "default", stored.encode()) == body.encode()
    assert decode(stored) == decode(body)  # a worker without keys reads it as before


def test_a_worker_holding_both_keys_verifies_jobs_signed_with_either() -> None:
    old = signer("k1").sign("j1", "default", envelope())
    new = signer("k2").sign("j1", "default", envelope())
    for stored in (old, new):
        assert signer("k2").verify("j1", "default", stored.encode()) == envelope().encode()


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda s: s.replace("[1]", "[2]"), "does not match"),
        (lambda s: s.replace('"kid":"k2"', '"kid":"k1"'), "does not match"),
        (lambda s: s.replace('"kid":"k2"', '"kid":"k9"'), "unknown key id 'k9'"),
        (unsigned, "not signed"),
        (lambda s: s[:-3] + 'AA"}', "does not match"),
        (lambda s: s + " ", "not signed"),
    ],
)
def test_a_changed_envelope_is_refused_with_a_reason(tamper: object, message: str) -> None:
    stored = tamper(signer().sign("j1", "default", envelope()))  # type: ignore[operator]
    with pytest.raises(SignatureError, match=message):
        signer().verify("j1", "default", stored.encode())


def test_a_signed_envelope_copied_under_another_job_id_or_queue_is_refused() -> None:
    stored = signer().sign("j1", "default", envelope()).encode()
    with pytest.raises(SignatureError, match="does not match"):
        signer().verify("j2", "default", stored)
    with pytest.raises(SignatureError, match="does not match"):
        signer().verify("j1", "other", stored)


def test_ed25519_workers_hold_only_the_public_key_and_cannot_sign() -> None:
    private = Ed25519PrivateKey.generate()
    producer = Signer({"e1": private}, "e1")
    worker = Signer({"e1": private.public_key()})
    stored = producer.sign("j1", "default", envelope())
    assert worker.verify("j1", "default", stored.encode()) == envelope().encode()
    with pytest.raises(SignatureError, match="does not match"):
        worker.verify("j1", "default", stored.replace("[1]", "[3]").encode())
    assert worker.current is None
    with pytest.raises(ConfigError, match="cannot sign"):
        worker.sign("j1", "default", envelope())
    with pytest.raises(ConfigError, match="public key"):
        Signer({"e1": private.public_key()}, "e1")


def test_keys_come_from_the_environment_in_every_form() -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw_private = private.private_bytes_raw()
    b64 = base64.b64encode
    env = {
        "STEM_SIGNING_KEYS": f"k2:{b64(SECRET2).decode()}, k1:{b64(SECRET1).decode()},"
        f"e1:ed25519:{b64(raw_private).decode()},e2:ed25519-public:{b64(public).decode()}",
        "STEM_SIGNING_KEY_ID": "k2",
    }
    from_env = Signer.from_env(env)
    assert from_env is not None
    assert (from_env.current, sorted(from_env.keys)) == ("k2", ["e1", "e2", "k1", "k2"])
    stored = signer().sign("j1", "default", envelope())
    assert from_env.verify("j1", "default", stored.encode()) == envelope().encode()
    assert Signer.from_env({}) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("c2VjcmV0LXNlY3JldC1zZWNyZXQ=", "an item is not 'kid:base64secret'"),
        ("k1:not base64!", "not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "at least 16 bytes"),
        ("k1:c2VjcmV0LXNlY3JldC1zZWNyZXQ=:AAAA", "unknown kind"),
        ("k1:ed25519:AAAA", "not 32 raw bytes"),
        ("bad id!:AAAA", "invalid signing key id"),
    ],
)
def test_a_bad_key_setting_is_one_clear_error_that_never_shows_the_value(
    spec: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Signer.from_env({"STEM_SIGNING_KEYS": spec})
    assert "c2VjcmV0" not in str(caught.value)
    assert spec.rpartition(":")[2] not in str(caught.value)


def test_signing_settings_are_checked_when_the_app_is_made() -> None:
    with pytest.raises(ConfigError, match="'k3' is not among the signing keys"):
        Stem(signing_keys={"k1": SECRET1}, signing_key_id="k3")
    with pytest.raises(ConfigError, match="needs signing_keys"):
        Stem(signing_key_id="k1")
    with pytest.raises(ConfigError, match="empty"):
        Stem(signing_keys={})


def test_no_repr_shows_a_secret() -> None:
    app = Stem(signing_keys={"k2": SECRET2, "k1": SECRET1}, signing_key_id="k2")
    shown = repr(app) + repr(app.signer) + repr(vars(app)) + repr(list(app.signer.keys.values()))  # type: ignore[union-attr]
    for secret in (SECRET1, SECRET2):
        assert secret.decode() not in shown
        assert base64.b64encode(secret).decode() not in shown
    assert "k2" in repr(app.signer)


def test_the_key_id_of_a_stored_envelope_is_read_without_a_key() -> None:
    assert key_id_of(signer("k1").sign("j1", "default", envelope())) == "k1"
    assert key_id_of(envelope()) is None
