"""Bedrock citations, files and traces as OpenAI message annotations.

Citations become ``url_citation`` annotations (the OpenAI shape clients already render) with the
untouched Bedrock reference alongside; files and raw traces use plugin-specific types. All of
them ride on the chunk that carries them, so streamed and non-streamed answers look alike.
"""

from __future__ import annotations

from typing import Any

#: ``location.type`` -> (member, key of the address inside it)
_LOCATIONS = {
    "S3": ("s3Location", "uri"),
    "WEB": ("webLocation", "url"),
    "CONFLUENCE": ("confluenceLocation", "url"),
    "SALESFORCE": ("salesforceLocation", "url"),
    "SHAREPOINT": ("sharePointLocation", "url"),
    "KENDRA": ("kendraDocumentLocation", "uri"),
    "CUSTOM": ("customDocumentLocation", "id"),
    "SQL": ("sqlLocation", "query"),
}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _address(location: Any) -> str:
    if not isinstance(location, dict):
        return ""
    member, key = _LOCATIONS.get(str(location.get("type")), ("", ""))
    found = location.get(member)
    if isinstance(found, dict) and isinstance(found.get(key), str):
        return found[key]
    for value in location.values():  # a location type newer than this table
        if isinstance(value, dict):
            for key in ("uri", "url", "id"):
                if isinstance(value.get(key), str):
                    return value[key]
    return ""


def citations(attribution: Any) -> list[dict[str, Any]]:
    """``attribution.citations`` -> one ``url_citation`` per retrieved reference."""
    out: list[dict[str, Any]] = []
    items = attribution.get("citations") if isinstance(attribution, dict) else None
    for citation in items or ():
        if not isinstance(citation, dict):
            continue
        part = _dict(_dict(citation.get("generatedResponsePart")).get("textResponsePart"))
        text = part.get("text") if isinstance(part.get("text"), str) else ""
        span = _dict(part.get("span"))
        start, end = span.get("start"), span.get("end")
        for ref in citation.get("retrievedReferences") or ():
            if not isinstance(ref, dict):
                continue
            url = _address(ref.get("location"))
            metadata = _dict(ref.get("metadata"))
            title = metadata.get("title") if isinstance(metadata.get("title"), str) else None
            out.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "url": url,
                        "title": title or url.rstrip("/").rsplit("/", 1)[-1],
                        "start_index": start if isinstance(start, int) else 0,
                        "end_index": end if isinstance(end, int) else len(text),
                    },
                    "bedrock_citation": {"text": text, "span": span, "reference": ref},
                }
            )
    return out


def files(payload: Any) -> list[dict[str, Any]]:
    """A ``files`` event -> one ``bedrock_agent_file`` annotation per file (bytes stay base64)."""
    items = payload.get("files") if isinstance(payload, dict) else None
    return [{"type": "bedrock_agent_file", "file": f} for f in items or () if isinstance(f, dict)]


def trace(payload: Any) -> dict[str, Any]:
    """A ``trace`` event, untouched, as a ``bedrock_agent_trace`` annotation."""
    return {"type": "bedrock_agent_trace", "trace": payload}
