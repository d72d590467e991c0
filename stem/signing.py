"""Payload signing: producers sign each envelope, workers verify it before decoding it.

Where the signature lives: **inside the stored envelope string, as its last two keys**::

    {"v":1,"id":"...",...,"headers":{},"kid":"k2","sig":"<base64url>"}
    \\_____________ body[:-1] _____________/\\__________ suffix __________/

The body is the envelope exactly as :func:`stem.envelope.encode_fields` makes it; the
stored string is the body without its closing brace, then the suffix. Why there and not
in fields of the job record beside ``env``: the envelope string is what every path
already copies untouched (retry, reclaim, the dead-letter entry, replay, which rebuilds
the record from the DLQ entry after the record expired), so a signature inside it
survives all of them with no change to any Lua script, and the stored string stays one
JSON object that replay's ``cjson.decode``, ``stem dlq show`` and workers without keys
(unknown keys are ignored) still read.

What is signed (HMAC-SHA256, or Ed25519 with the ``signing`` extra)::

    b"stem-sig-1\\n" + kid + b"\\n" + job id + b"\\n" + queue + b"\\n" + body

The body holds the job id, queue and enqueue time (``enq_ms``) that the producer wrote.
The worker takes the job id and queue of the *delivery* (the stream entry and the queue
it was read from), not the envelope's, so a signed envelope copied under another job id
or into another queue fails before anything of it is decoded. Verification splits the
suffix off with an anchored pattern whose characters exclude quotes, so the body that
was signed is recovered byte for byte and only that body is decoded.

Secrets never leave this module: :class:`SigningKey` and :class:`Signer` print key ids
and algorithms only, and no error message holds a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

from stem.errors import ConfigError, PayloadError

#: The signed message's first line: changing how messages are built changes it.
MESSAGE_PREFIX = b"stem-sig-1\n"
HMAC_SHA256 = "hmac-sha256"
ED25519 = "ed25519"
#: Shortest HMAC secret accepted (bytes); 32 random bytes are recommended.
MIN_SECRET_BYTES = 16

_KID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_SUFFIX = re.compile(rb',"kid":"([A-Za-z0-9_.\-]{1,64})","sig":"([A-Za-z0-9_\-]{1,200})"\}\Z')


class SignatureError(PayloadError):
    """A delivered envelope is unsigned, signed with an unknown key, or does not verify."""


class SigningKey:
    """One key under one key id: an HMAC secret, or an Ed25519 private or public key.

    Its ``repr`` names the key id and algorithm only.
    """

    __slots__ = ("_keyed", "_private", "_public", "_secret", "algorithm", "kid")

    def __init__(self, kid: str, key: Any) -> None:
        if not isinstance(kid, str) or not _KID.match(kid):
            raise ConfigError(
                f"invalid signing key id {kid!r}: use 1-64 letters, digits, '_', '.' or '-'"
            )
        self.kid = kid
        self._secret: bytes | None = None
        self._keyed: Any = None  # an HMAC keyed once; each message works on a copy
        self._private: Any = None
        self._public: Any = None
        if isinstance(key, str):
            key = key.encode()
        if isinstance(key, bytes):
            if len(key) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"signing key {kid!r}: an HMAC secret needs at least {MIN_SECRET_BYTES} "
                    "bytes (32 random bytes recommended)"
                )
            self.algorithm = HMAC_SHA256
            self._secret = key
            # hashlib (OpenSSL's libcrypto, ~4 MiB of RSS) is loaded only once a key is:
            # every app imports this module, and a process-pool child signs nothing.
            import hashlib
            import hmac

            self._keyed = hmac.new(key, digestmod=hashlib.sha256)
            return
        ed = _ed25519()
        if ed is not None and isinstance(key, ed.Ed25519PrivateKey):
            self.algorithm, self._private, self._public = ED25519, key, key.public_key()
        elif ed is not None and isinstance(key, ed.Ed25519PublicKey):
            self.algorithm, self._public = ED25519, key
        else:
            raise ConfigError(
                f"signing key {kid!r}: expected bytes (an HMAC secret) or an Ed25519 "
                f"private or public key, got {type(key).__name__}"
            )

    @property
    def can_sign(self) -> bool:
        """False for an Ed25519 public key (a worker that may verify but not forge)."""
        return self._secret is not None or self._private is not None

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message``."""
        if self._keyed is not None:
            return self._hmac(message)
        if self._private is None:
            raise ConfigError(f"signing key {self.kid!r} is a public key: it cannot sign")
        return bytes(self._private.sign(message))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's over ``message`` (constant time for HMAC)."""
        if self._keyed is not None:
            import hmac  # loaded by __init__ already: a dictionary look-up

            return hmac.compare_digest(self._hmac(message), signature)
        from cryptography.exceptions import InvalidSignature

        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def _hmac(self, message: bytes) -> bytes:
        # Copying the keyed state skips hashing the padded key per message: the cheapest
        # HMAC the standard library offers (see bench/signing.py).
        h = self._keyed.copy()
        h.update(message)
        return bytes(h.digest())

    def __repr__(self) -> str:
        kind = "private" if self._private is not None else "public"
        detail = "secret hidden" if self._secret is not None else f"{kind} key"
        return f"SigningKey({self.kid!r}, {self.algorithm}, {detail})"


class Signer:
    """The keys of one app: signs with the current key, verifies with any key it holds.

    ``keys`` maps key ids to keys (see :class:`SigningKey`); ``current`` is the key id
    producers sign with. Without ``current``, the only key that can sign is current, if
    there is exactly one; otherwise the app verifies but cannot sign. Immutable.
    """

    __slots__ = ("current", "keys")

    def __init__(self, keys: Mapping[str, Any], current: str | None = None) -> None:
        if not keys:
            raise ConfigError("signing_keys is empty: give at least one key, or None")
        self.keys = {kid: k if isinstance(k, SigningKey) else SigningKey(kid, k)
                     for kid, k in keys.items()}  # fmt: skip
        if current is None:
            signers = [k.kid for k in self.keys.values() if k.can_sign]
            current = signers[0] if len(signers) == 1 else None
        elif current not in self.keys:
            known = ", ".join(sorted(self.keys))
            raise ConfigError(f"signing_key_id {current!r} is not among the signing keys ({known})")
        elif not self.keys[current].can_sign:
            raise ConfigError(f"signing_key_id {current!r} names a public key: it cannot sign")
        self.current = current

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Signer | None:
        """The signer ``$STEM_SIGNING_KEYS`` and ``$STEM_SIGNING_KEY_ID`` describe, or None.

        ``STEM_SIGNING_KEYS`` is comma-separated ``kid:base64`` (an HMAC secret),
        ``kid:ed25519:base64`` (a raw 32-byte Ed25519 private key) or
        ``kid:ed25519-public:base64`` (a raw 32-byte public key).
        """
        env = os.environ if environ is None else environ
        spec = env.get("STEM_SIGNING_KEYS", "").strip()
        if not spec:
            return None
        keys = dict(parse_key_spec(item) for item in spec.split(",") if item.strip())
        return cls(keys, env.get("STEM_SIGNING_KEY_ID") or None)

    def sign(self, job_id: str, queue: str, envelope: str) -> str:
        """``envelope`` (as encoded, a JSON object) with the current key's signature."""
        if self.current is None:
            raise ConfigError(
                "this app verifies signatures but cannot sign: set signing_key_id "
                "(STEM_SIGNING_KEY_ID) to a key it holds a secret or private key for"
            )
        key = self.keys[self.current]
        body = envelope.encode()
        sig = key.sign(_message(key.kid, job_id, queue, body))
        return f'{envelope[:-1]},"kid":"{key.kid}","sig":"{_b64(sig)}"}}'

    def verify(self, job_id: str, queue: str, stored: bytes) -> bytes:
        """The signed body of ``stored``, the envelope as the worker read it for
        ``job_id`` from ``queue``; raises :class:`SignatureError` without decoding it."""
        match = _suffix(stored)
        if match is None:
            raise SignatureError("the envelope is not signed")
        kid = match.group(1).decode()
        key = self.keys.get(kid)
        if key is None:
            raise SignatureError(f"the envelope is signed with unknown key id {kid!r}")
        try:
            sig = base64.urlsafe_b64decode(match.group(2) + b"=" * (-len(match.group(2)) % 4))
        except (binascii.Error, ValueError):
            sig = b""
        body = stored[: match.start()] + b"}"
        if not key.verify(_message(kid, job_id, queue, body), sig):
            raise SignatureError(f"the signature does not match (key id {kid!r})")
        return body

    def __repr__(self) -> str:
        return f"Signer(current={self.current!r}, keys={sorted(self.keys)!r})"


def key_id_of(stored: str | bytes) -> str | None:
    """The key id a stored envelope claims to be signed with, or None when unsigned."""
    raw = stored.encode() if isinstance(stored, str) else stored
    match = _suffix(raw)
    return match.group(1).decode() if match else None


def unsigned(stored: str) -> str:
    """A stored envelope without its signature suffix (as it was before signing)."""
    match = _suffix(stored.encode())
    if match is None:
        return stored
    return stored.encode()[: match.start()].decode() + "}"


def parse_key_spec(item: str) -> tuple[str, Any]:
    """One ``kid:[ed25519:|ed25519-public:]base64`` item of ``STEM_SIGNING_KEYS``; the
    error names the key id, never the value."""
    kid, sep, rest = item.strip().partition(":")
    if not sep or not rest:  # no key id to name: the item may be a bare secret
        raise ConfigError(
            "STEM_SIGNING_KEYS: an item is not 'kid:base64secret' (or "
            "'kid:ed25519:base64', 'kid:ed25519-public:base64')"
        )
    kind, sep, value = rest.partition(":")
    if not sep:
        kind, value = HMAC_SHA256, rest
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"STEM_SIGNING_KEYS: the value of key {kid!r} is not base64") from None
    if kind == HMAC_SHA256:
        return kid, raw
    if kind not in (ED25519, ED25519 + "-public"):
        raise ConfigError(  # the kind is not shown: a misplaced colon could make it a secret
            f"STEM_SIGNING_KEYS: key {kid!r} has an unknown kind (ed25519 and "
            "ed25519-public are known; a bare value is an HMAC secret)"
        )
    ed = _ed25519()
    if ed is None:
        raise ConfigError(
            f"STEM_SIGNING_KEYS: key {kid!r} is Ed25519, which needs the 'signing' extra "
            "(pip install 'stem-jobs[signing]')"
        )
    try:
        if kind == ED25519:
            return kid, ed.Ed25519PrivateKey.from_private_bytes(raw)
        return kid, ed.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ConfigError(f"STEM_SIGNING_KEYS: key {kid!r} is not 32 raw bytes") from None


def _suffix(stored: bytes) -> re.Match[bytes] | None:
    """The signature suffix of ``stored``, or None. Only its last ``,"kid":"`` can start
    one (a signature holds no quote or comma), so the pattern runs once, from there."""
    start = stored.rfind(b',"kid":"')
    return _SUFFIX.match(stored, start) if start >= 0 else None


def _message(kid: str, job_id: str, queue: str, body: bytes) -> bytes:
    return b"%s%s\n%s\n%s\n%s" % (MESSAGE_PREFIX, kid.encode(), job_id.encode(),
                                  queue.encode(), body)  # fmt: skip


def _b64(sig: bytes) -> str:
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _ed25519() -> Any:
    """The Ed25519 module of ``cryptography``, or None without the ``signing`` extra."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        return None
    return ed25519
