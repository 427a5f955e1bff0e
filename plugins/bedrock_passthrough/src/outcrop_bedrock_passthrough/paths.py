"""The raw request path and query: what is routed, refused and signed."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from outcrop import OutcropError, clip

from . import PREFIX

_CANONICAL_QUERY = re.compile(r"[A-Za-z0-9\-_.~%=&]*\Z")


def relative(raw_full: str, root_path: str) -> str:
    """The raw path after ``[root_path]/bedrock``."""
    path = raw_full
    encoded_root = quote(root_path, safe="/") if root_path else ""
    if encoded_root and path.startswith(encoded_root):
        path = path[len(encoded_root) :]
    return path[len(PREFIX) :] if path.startswith(PREFIX) else path


def check_segments(path: str) -> None:
    """Refuse dot segments: AWS would normalize them to a path other than the one authorized."""
    for segment in path.split("/"):
        if segment and unquote(segment) in (".", ".."):
            raise OutcropError(
                f"the path {clip(path)!r} contains a '.' or '..' segment",
                400,
                aws_type="ValidationException",
            )


def canonical_query(query: str) -> str:
    """The query as AWS canonicalizes it, so the signature AWS recomputes matches ours.

    SDKs already send it that way (then it is forwarded untouched); a hand-written query with
    characters such as ``/`` or ``:`` is re-encoded without changing its values.
    """
    if _CANONICAL_QUERY.match(query):
        return query
    pairs = (p.partition("=") for p in query.split("&") if p)
    return "&".join(
        f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}" for k, _, v in pairs
    )
