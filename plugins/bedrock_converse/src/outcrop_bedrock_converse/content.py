"""OpenAI content parts -> Converse content blocks: text, images, documents, cache points.

Images and documents arrive inline (base64 ``data:`` URLs) and are checked before anything is
sent: a supported format (the bytes must be what the media type says), and Bedrock's size
limits. ``http(s)`` image URLs are refused unless the deployment lists the hosts it may fetch
from (``fetch.py``): fetching any URL would let a caller make the gateway reach any address
(SSRF).
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from outcrop import OutcropError, clip

#: Bedrock Converse limits: bytes per image / document, and how many per request.
MAX_IMAGE_BYTES = 3_750_000
MAX_DOCUMENT_BYTES = 4_500_000
MAX_IMAGES = 20
MAX_DOCUMENTS = 5

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_IMAGE_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_TYPES = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DOCUMENT_EXTENSIONS = frozenset(_DOCUMENT_TYPES.values())
_DATA_URL = re.compile(r"data:([\w.+/-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")


class Attachments:
    """Images and documents seen so far in one request (Bedrock caps both)."""

    def __init__(self, fetched: dict[str, tuple[str, bytes]] | None = None) -> None:
        #: ``url -> (media type, bytes)`` of the image URLs fetched for this request.
        self.fetched = fetched or {}
        self.images = 0
        self.documents = 0
        self.names: set[str] = set()


def _bad(message: str, param: str) -> OutcropError:
    return OutcropError(message, 400, param=param, code="invalid_content")


def _data_url(url: str, param: str, what: str) -> tuple[str, str, bytes]:
    """``data:{type};base64,{data}`` -> (media type, the base64 text, the decoded bytes)."""
    found = _DATA_URL.match(url)
    if not found:
        raise _bad(f"{param}: expected a base64 data URL (data:{what};base64,...)", param)
    b64 = url[found.end() :]
    try:
        raw = binascii.a2b_base64(b64, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{param}: the data URL is not valid base64 ({exc})", param) from None
    if not raw:
        raise _bad(f"{param}: the data URL holds no data", param)
    return found.group(1).lower(), b64, raw


def _sniff_image(raw: bytes) -> str | None:
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    return next((fmt for magic, fmt in _MAGIC if raw.startswith(magic)), None)


def image_block(part: dict[str, Any], param: str, seen: Attachments) -> dict[str, Any]:
    """An ``image_url`` part -> ``{"image": {"format", "source": {"bytes"}}}``."""
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise _bad(f"{param}.image_url.url: required", param)
    if url[:8].lower().startswith(("http://", "https://")):
        if url not in seen.fetched:
            raise _bad(
                f"{param}: image URLs are not fetched for this model; send the image "
                "inline as a base64 data URL (data:image/png;base64,...)",
                param,
            )
        media, raw = seen.fetched[url]
        b64 = binascii.b2a_base64(raw, newline=False).decode("ascii")
    else:
        media, b64, raw = _data_url(url, param, "image/png")
    declared = _IMAGE_TYPES.get(media)
    if declared is None:
        raise _bad(
            f"{param}: image type {clip(media)!r} is not supported; use PNG, JPEG, GIF or WebP",
            param,
        )
    actual = _sniff_image(raw)
    if actual != declared:
        raise _bad(
            f"{param}: the data is not a {declared.upper()} image "
            f"({'it looks like ' + actual.upper() if actual else 'unknown format'})",
            param,
        )
    if len(raw) > MAX_IMAGE_BYTES:
        raise _bad(
            f"{param}: image of {len(raw)} bytes exceeds Bedrock's limit of "
            f"{MAX_IMAGE_BYTES} bytes",
            param,
        )
    seen.images += 1
    if seen.images > MAX_IMAGES:
        raise _bad(f"{param}: more than {MAX_IMAGES} images in one request", param)
    return {"image": {"format": declared, "source": {"bytes": b64}}}


def document_block(part: dict[str, Any], param: str, seen: Attachments) -> dict[str, Any]:
    """A ``file`` part (``file_data`` as a data URL) -> ``{"document": {...}}``."""
    spec = part.get("file")
    if not isinstance(spec, dict) or not isinstance(spec.get("file_data"), str):
        raise _bad(
            f"{param}.file.file_data: required (uploaded file ids are not supported; "
            "send the file inline as a base64 data URL)",
            param,
        )
    media, b64, raw = _data_url(spec["file_data"], param, "application/pdf")
    filename = str(spec.get("filename") or "")
    stem, _, ext = filename.rpartition(".") if "." in filename else (filename, "", "")
    fmt = _DOCUMENT_TYPES.get(media) or (
        ext.lower() if ext.lower() in _DOCUMENT_EXTENSIONS else None
    )
    if fmt is None:
        raise _bad(
            f"{param}: document type {clip(media)!r} is not supported; use one of "
            f"{', '.join(sorted(_DOCUMENT_EXTENSIONS))}",
            param,
        )
    if fmt == "pdf" and not raw.startswith(b"%PDF-"):
        raise _bad(f"{param}: the data is not a PDF document", param)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _bad(
            f"{param}: document of {len(raw)} bytes exceeds Bedrock's limit of "
            f"{MAX_DOCUMENT_BYTES} bytes",
            param,
        )
    seen.documents += 1
    if seen.documents > MAX_DOCUMENTS:
        raise _bad(f"{param}: more than {MAX_DOCUMENTS} documents in one request", param)
    return {
        "document": {"format": fmt, "name": _document_name(stem, seen), "source": {"bytes": b64}}
    }


def _document_name(stem: str, seen: Attachments) -> str:
    """Bedrock allows letters, digits, single spaces, hyphens, brackets; names must differ."""
    name = " ".join(_NAME_UNSAFE.sub("-", stem).split())[:180] or "document"
    unique, n = name, 1
    while unique in seen.names:
        n += 1
        unique = f"{name} ({n})"
    seen.names.add(unique)
    return unique


def cache_point(part: dict[str, Any]) -> dict[str, Any] | None:
    """The ``cachePoint`` block that follows a part marked with Anthropic's ``cache_control``."""
    control = part.get("cache_control")
    if not isinstance(control, dict):
        return None
    point: dict[str, Any] = {"type": "default"}
    if isinstance(control.get("ttl"), str):
        point["ttl"] = control["ttl"]
    return {"cachePoint": point}


def text_parts(
    content: Any, param: str, *, allow: tuple[str, ...] = ("text",)
) -> list[dict[str, Any]]:
    """String or text-part list -> text (and cache point) blocks; other part types are a 400."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allow:
            raise _bad(f"{param}[{i}]: content part type {clip(kind)!r} is not allowed here", param)
        if part.get("text"):
            blocks.append({"text": part["text"]})
        point = cache_point(part)
        if point is not None:
            blocks.append(point)
    return blocks


def user_parts(content: Any, param: str, seen: Attachments) -> list[dict[str, Any]]:
    """A user message's content -> text, image, document and cache point blocks."""
    if not isinstance(content, list):
        return text_parts(content, param)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(image_block(part, where, seen))
        elif kind == "file":
            blocks.append(document_block(part, where, seen))
        else:
            raise _bad(
                f"{where}: content part type {clip(kind)!r} is not supported by Bedrock "
                "Converse (text, image_url and file are)",
                where,
            )
        point = cache_point(part)
        if point is not None:
            blocks.append(point)
    return blocks
