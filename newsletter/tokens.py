"""Unsubscribe tokens: opaque, HMAC-SHA256 signed, holding no email address.

A token carries the subscriber's random token key and the campaign it was sent in, so the
unsubscribe can be attributed to a campaign. Forgetting a subscriber deletes the key, and
every token naming it then leads nowhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from newsletter.keys import derive

VERSION = 1
_KEY_BYTES = 16
_SIG_BYTES = 16
_PAYLOAD = struct.Struct(">B16sI")
_RAW = _PAYLOAD.size + _SIG_BYTES


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


LENGTH = len(_b64(bytes(_RAW)))  # 50 characters, no padding


def _decode(token: str) -> bytes | None:
    if len(token) != LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-LENGTH % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _RAW else None


class TokenSigner:
    def __init__(self, secret: bytes):
        self._key = derive(secret, "unsubscribe-token")

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def make(self, token_key: str, campaign_id: int = 0) -> str:
        payload = _PAYLOAD.pack(VERSION, bytes.fromhex(token_key), campaign_id)
        return _b64(payload + self._sign(payload))

    def read(self, token: str) -> tuple[str, int] | None:
        """(token key, campaign id) for a genuine token written exactly as `make` writes it, else None.

        The token is compared, in constant time, with the one `make` would write for its payload:
        no second spelling passes (padding, the other base64 alphabet, other unused bits in the
        last character). Every token costs one HMAC, whatever is wrong with it.
        """
        raw = _decode(token)
        payload = raw[: _PAYLOAD.size] if raw else bytes(_PAYLOAD.size)
        canonical = _b64(payload + self._sign(payload)).encode("ascii")
        if raw is None or not hmac.compare_digest(canonical, token.encode("utf-8", "replace")):
            return None
        version, key, campaign_id = _PAYLOAD.unpack(payload)
        if version != VERSION:
            return None
        return key.hex(), campaign_id
