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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigner:
    def __init__(self, secret: bytes):
        self._key = derive(secret, "unsubscribe-token")

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def make(self, token_key: str, campaign_id: int = 0) -> str:
        payload = _PAYLOAD.pack(VERSION, bytes.fromhex(token_key), campaign_id)
        return _b64(payload + self._sign(payload))

    def read(self, token: str) -> tuple[str, int] | None:
        """(token key, campaign id) for a genuine token, else None. Constant-time compare."""
        if not token or len(token) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _PAYLOAD.size + _SIG_BYTES:
            return None
        payload, signature = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        version, key, campaign_id = _PAYLOAD.unpack(payload)
        if version != VERSION:
            return None
        return key.hex(), campaign_id
