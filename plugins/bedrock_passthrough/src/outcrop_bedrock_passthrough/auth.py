"""Who may call ``/bedrock/*``: the master key as a bearer token, or SigV4 with a gateway-issued key.

* ``Authorization: Bearer <key>`` (or ``x-api-key``) is checked against the master key in
  constant time (curl, and boto3 bedrock-runtime with ``AWS_BEARER_TOKEN_BEDROCK``).
* ``Authorization: AWS4-HMAC-SHA256 ...`` from any AWS SDK is verified against the key pairs in
  ``bedrock_passthrough.keys`` over the raw request as received (method, encoded path and
  query, signed headers, body bytes) with a 15-minute clock window.
* Without a master key the gateway is open, as the core's chat route is: any bearer token or
  none is accepted, and so is a SigV4 signature when no key pairs are configured (when they
  are, a signature must verify).

Failures are AWS-shaped 403s (``UnrecognizedClientException``, ``InvalidSignatureException``,
``MissingAuthenticationTokenException``) so an SDK raises a clear ``ClientError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from outcrop import Gateway, OutcropError, SigV4Error, verify_sigv4

SIGV4_SCHEME = "aws4-hmac-sha256 "


@dataclass(frozen=True, slots=True)
class Caller:
    """How the caller authenticated: ``master_key``, ``sigv4`` or ``open``."""

    method: str
    access_key: str | None = None
    region: str | None = None


def _denied(code: str, message: str) -> OutcropError:
    return OutcropError(message, 403, aws_type=code, code=code)


class ClientAuth:
    def __init__(self, gateway: Gateway, secrets: dict[str, str], max_skew_s: int) -> None:
        self._gateway = gateway
        self._secrets = secrets
        self._max_skew_s = max_skew_s

    @property
    def open(self) -> bool:
        """No master key: like the chat route, every caller is accepted (signatures made with
        a configured key pair are still verified)."""
        return not self._gateway.master_key

    def check_headers(self, headers: dict[str, str]) -> Caller | None:
        """Authenticate from headers alone; ``None`` means: verify the signature with the body."""
        authorization = headers.get("authorization")
        if authorization and authorization[:17].lower() == SIGV4_SCHEME:
            if self._secrets:
                return None
            if self.open:
                return Caller("open")
            raise _denied("UnrecognizedClientException",
                          "The security token included in the request is invalid: this gateway "
                          "issues no SigV4 keys (bedrock_passthrough.keys); send "
                          "`Authorization: Bearer <key>` instead.")
        if (authorization and authorization[:7].lower() == "bearer ") or "x-api-key" in headers:
            try:
                presented = self._gateway.authenticate(headers)
            except OutcropError:
                raise _denied("UnrecognizedClientException",
                              "The API key included in the request is invalid.") from None
            return Caller("master_key" if presented else "open")
        if self.open:
            return Caller("open")
        raise _denied("MissingAuthenticationTokenException",
                      "Missing Authentication Token: send `Authorization: Bearer <key>` or sign "
                      "the request with a gateway-issued SigV4 key.")

    def verify(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        expected_service: str | None,
    ) -> Caller:
        """Verify a SigV4 signature over the request exactly as received."""
        try:
            identity = verify_sigv4(
                method, raw_path, raw_query, headers, body, self._secrets.get,
                expected_service=expected_service, max_skew_s=self._max_skew_s,
            )
        except SigV4Error as exc:
            raise _denied(exc.code, exc.message) from None
        return Caller("sigv4", identity.access_key, identity.region)
