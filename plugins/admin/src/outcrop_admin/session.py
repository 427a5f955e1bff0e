"""Signed session cookies and CSRF tokens.

A session is a signed cookie (HMAC-SHA256 under a secret derived from the master key), so every
worker of a gateway accepts it and changing the master key ends every session. It names who
signed in (the master key, or a virtual key's hash, re-checked on every request) and a random
session id; the CSRF token of a form is an HMAC of that id. Sign-out forgets the cookie in the
browser and revokes the id in this process until it would have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import msgspec

COOKIE = "outcrop_admin"
#: Before sign-in: a random value whose HMAC is the sign-in form's CSRF token.
LOGIN_COOKIE = "outcrop_admin_login"
PATH = "/ui"
LIFETIME_S = 8 * 3600


#: What the session secret is derived for (``GatewayAPI.derived_secret``).
SESSION_PURPOSE = b"outcrop-admin/session/v1"


class Claims(msgspec.Struct, frozen=True):
    kind: str  # "master_key" or "virtual_key"
    sub: str | None  # a virtual key's SHA-256 hex; None for the master key
    sid: str
    exp: int
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    claims: Claims
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    def __init__(self, secret: bytes, lifetime_s: int = LIFETIME_S) -> None:
        """``secret``: the gateway's ``derived_secret(SESSION_PURPOSE)``."""
        self._secret = secret
        self.lifetime_s = lifetime_s
        self._revoked: dict[str, int] = {}  # sid -> expiry

    def _mac(self, label: str, data: str) -> str:
        return _b64(hmac.new(self._secret, f"{label}:{data}".encode(), hashlib.sha256).digest())

    # -- sessions ----------------------------------------------------------------------------
    def issue(self, kind: str, sub: str | None, alias: str | None = None) -> str:
        claims = Claims(
            kind, sub, secrets.token_urlsafe(16), int(time.time()) + self.lifetime_s, alias
        )
        payload = _b64(msgspec.json.encode(claims))
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or ``None`` (absent, forged, expired or revoked)."""
        if not cookie or len(cookie) > 2048 or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            claims = msgspec.json.decode(_unb64(payload), type=Claims)
        except (msgspec.DecodeError, ValueError):
            return None
        if claims.exp <= time.time() or claims.sid in self._revoked:
            return None
        return Session(claims, self._mac("csrf", claims.sid))

    def revoke(self, session: Session) -> None:
        moment = time.time()
        self._revoked = {s: e for s, e in self._revoked.items() if e > moment}
        self._revoked[session.claims.sid] = session.claims.exp

    # -- the sign-in form's CSRF token -----------------------------------------------------------
    @staticmethod
    def login_nonce() -> str:
        return secrets.token_urlsafe(16)

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(
            token or "", self.login_token(nonce or "")
        )


def cookie_header(
    name: str, value: str, *, secure: bool, max_age: int | None = None, path: str = PATH
) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Secure over TLS, scoped to /ui."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
