"""What the simulator saw: one ``RecordedRequest`` per received request."""

from __future__ import annotations

import json as _json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote


@dataclass(slots=True)
class RecordedRequest:
    """A request as received, plus what the simulator made of it.

    ``headers`` has lowercased names (repeated headers joined with ``", "``). ``params`` holds
    the decoded URI labels and query members by their model names (``agentId``, ``sessionId``,
    ``modelId``, ``agentRuntimeArn``, ``qualifier`` ...). ``region``, ``access_key`` and
    ``signing_service`` come from the verified SigV4 credential scope; ``auth`` is ``"sigv4"``,
    ``"bearer"`` or ``None`` when authentication failed. ``error`` is the AWS error code when
    the simulator itself rejected the request (authentication, validation, unknown path);
    ``disconnected`` is True when the client went away before the response ended.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    request_id: str
    service: str | None = None
    operation: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    region: str | None = None
    access_key: str | None = None
    signing_service: str | None = None
    auth: str | None = None
    status: int | None = None
    error: str | None = None
    disconnected: bool = False
    received_at: float = field(default_factory=time.time)

    @property
    def path(self) -> str:
        return unquote(self.raw_path)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body); ``ValueError`` if it is not
        JSON or nests too deep to parse."""
        try:
            return _json.loads(self.body) if self.body else None
        except RecursionError:
            raise ValueError("JSON nested too deep to parse") from None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")
