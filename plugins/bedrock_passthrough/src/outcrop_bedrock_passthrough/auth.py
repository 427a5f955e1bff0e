"""Who may call ``/bedrock/*``: a bearer key, or SigV4 with a gateway-issued key pair.

* ``Authorization: Bearer <key>`` (or ``x-api-key``) goes to ``GatewayAPI.authenticate``: the
  master key in constant time, or a key a plugin issued (curl, and boto3 bedrock-runtime with
  ``AWS_BEARER_TOKEN_BEDROCK``).
* ``Authorization: AWS4-HMAC-SHA256 ...`` from any AWS SDK is verified against the key pairs in
  ``bedrock_passthrough.keys``, then the pairs plugins issued (``outcrop_sigv4_secret``), over
  the raw request as received (method, encoded path and query, signed headers, body bytes) with
  a 15-minute clock window.
* With no client credential configured at all (no master key, no key pairs, no plugin that
  issues keys) the gateway is open, as the core's chat route is (and serves loopback callers
  only): any bearer token, any SigV4 signature or none is accepted. Configuring key pairs
  without a master key closes it: a signature must then verify, and unsigned callers are
  refused.

Failures are AWS-shaped 403s (``UnrecognizedClientException``, ``InvalidSignatureException``,
``MissingAuthenticationTokenException``) so an SDK raises a clear ``ClientError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from outcrop import (
    GatewayAPI,
    OutcropError,
    Principal,
    SigV4Error,
    SigV4Precheck,
    check_sigv4_headers,
    verify_sigv4,
)

SIGV4_SCHEME = "aws4-hmac-sha256 "
OPEN = Principal("open")


@dataclass(frozen=True, slots=True)
class Caller:
    """How the caller authenticated: ``master_key``, ``sigv4``, ``open`` or a plugin's kind
    (``virtual_key``, ``sigv4_key``), and who it is."""

    method: str
    principal: Principal
    access_key: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A SigV4 request whose headers passed: the key pair is known, the signature (over the body)
    is still to be verified. ``principal`` is set when a plugin issued the pair."""

    precheck: SigV4Precheck
    principal: Principal | None


def _denied(code: str, message: str) -> OutcropError:
    return OutcropError(message, 403, aws_type=code, code=code)


class ClientAuth:
    def __init__(self, gateway: GatewayAPI, secrets: dict[str, str], max_skew_s: int) -> None:
        self._gateway = gateway
        self._secrets = secrets
        self._max_skew_s = max_skew_s

    @property
    def issued_pairs(self) -> bool:
        """Key pairs exist: configured ones, or a plugin that issues them."""
        return bool(self._secrets) or self._gateway.issues_sigv4_keys

    @property
    def open(self) -> bool:
        """No client credential configured anywhere: like the chat route, every caller is
        accepted."""
        return not self._gateway.requires_auth

    def check_headers(self, headers: dict[str, str]) -> Caller | None:
        """Authenticate from headers alone; ``None`` means: verify the signature with the body."""
        authorization = headers.get("authorization")
        if authorization and authorization[:17].lower() == SIGV4_SCHEME:
            if self.issued_pairs:
                return None
            if self.open:
                return Caller("open", OPEN)
            raise _denied(
                "UnrecognizedClientException",
                "The security token included in the request is invalid: this gateway "
                "issues no SigV4 keys (bedrock_passthrough.keys); send "
                "`Authorization: Bearer <key>` instead.",
            )
        if (authorization and authorization[:7].lower() == "bearer ") or "x-api-key" in headers:
            try:
                principal = self._gateway.authenticate(headers)
            except OutcropError as exc:
                if exc.status == 401:
                    raise _denied(
                        "UnrecognizedClientException",
                        "The API key included in the request is invalid.",
                    ) from None
                raise _denied("AccessDeniedException", exc.message) from None
            return Caller(principal.kind, principal)
        if self.open:
            return Caller("open", OPEN)
        raise _denied(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: send `Authorization: Bearer <key>` or sign "
            "the request with a gateway-issued SigV4 key.",
        )

    def lookup_secret(self, access_key_id: str) -> tuple[str, Principal | None] | None:
        """The secret of a key id: the configured pairs first, then a plugin that issues them
        (``outcrop_sigv4_secret``); ``None`` when nobody knows it."""
        static = self._secrets.get(access_key_id)
        if static is not None:
            return static, None
        found = self._gateway.sigv4_secret(access_key_id)
        if found is None:
            return None
        secret, principal = found
        return secret, principal

    def precheck(
        self, headers: Sequence[tuple[bytes, bytes]], expected_service: str | None
    ) -> Pending:
        """Everything but the signature, from the headers alone: runs before any body byte is
        read, so an unknown key id, a stale or future date or a wrong scope costs no memory."""
        issued: list[Principal | None] = [None]

        def secret_for(access_key_id: str) -> str | None:
            found = self.lookup_secret(access_key_id)
            if found is None:
                return None
            secret, issued[0] = found
            return secret

        try:
            checked = check_sigv4_headers(
                headers, secret_for, expected_service=expected_service, max_skew_s=self._max_skew_s
            )
        except SigV4Error as exc:
            raise _denied(exc.code, exc.message) from None
        return Pending(checked, issued[0])

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        pending: Pending,
    ) -> Caller:
        """Verify a SigV4 signature over the request exactly as received."""
        try:
            identity = verify_sigv4(
                method,
                raw_path,
                raw_query,
                headers,
                body,
                lambda _key: pending.precheck.secret,
                precheck=pending.precheck,
            )
        except SigV4Error as exc:
            raise _denied(exc.code, exc.message) from None
        principal = pending.principal
        if principal is None:  # a statically configured pair: as trusted as the master key
            principal = Principal("sigv4", id=identity.access_key)
            return Caller("sigv4", principal, identity.access_key, identity.region)
        return Caller(principal.kind, principal, identity.access_key, identity.region)
