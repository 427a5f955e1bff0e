"""The key and team forms, derived from the fields ``/key/generate`` and ``/team/new`` take
(``outcrop_keys.manage.KeyFields``/``TeamFields``): a field the keys plugin adds appears here
without a change, with a generic label until it gets one below."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from outcrop_keys.manage import KeyFields, TeamFields

#: name -> (label, hint). Fields not listed get their name as label.
LABELS: dict[str, tuple[str, str]] = {
    "key_alias": ("Alias", "a unique name for the key"),
    "team_id": ("Team", "a key's team; a new team's id (empty: a random id)"),
    "team_alias": ("Team name", ""),
    "models": ("Models", "comma-separated model names or patterns; empty: every model"),
    "max_budget": ("Budget (USD)", "empty: no budget"),
    "budget_duration": ("Budget period", "e.g. 30d, 1h; the spend resets after it"),
    "duration": ("Valid for", "e.g. 30d; empty: never expires"),
    "expires": ("Expires at (UTC)", "empty: never"),
    "metadata": ("Metadata (JSON object)", ""),
    "tags": ("Tags", "comma-separated"),
    "rpm_limit": ("Requests per minute", "empty: no limit"),
    "tpm_limit": ("Tokens per minute", "empty: no limit"),
    "max_parallel_requests": ("Parallel requests", "empty: no limit"),
    "model_rpm_limit": ("Requests per minute, per model", 'JSON, e.g. {"nova": 60}'),
    "model_tpm_limit": ("Tokens per minute, per model", 'JSON, e.g. {"nova": 100000}'),
    "allowed_routes": ("Allowed routes", "comma-separated paths or patterns; empty: all"),
    "admin": ("Admin", "may use the management API and sign in here"),
    "blocked": ("Blocked", "refuse every call with this key"),
    "aws_sigv4": ("Issue a SigV4 key pair", "an access key id and secret for AWS SDKs"),
    "key": ("Chosen key", "optional: sk-... of at least 20 characters; empty: a random key"),
}
#: Fields the edit forms leave out: what names the row, the SigV4 pair (issued once), and a
#: key's block state (its own buttons).
KEY_NOT_EDITABLE = {"key", "aws_sigv4", "blocked"}
TEAM_NOT_EDITABLE = {"team_id"}


class FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # text | int | float | bool | list | json | datetime | team
    label: str
    hint: str

    @property
    def input_type(self) -> str:
        return {
            "int": "number",
            "float": "number",
            "bool": "checkbox",
            "datetime": "datetime-local",
        }.get(self.kind, "text")

    # -- value <-> form text ---------------------------------------------------------------
    def text(self, value: Any) -> str:
        """How a stored value is shown in the form (and compared on edit)."""
        if value is None:
            return ""
        if self.kind == "bool":
            return "on" if value else ""
        if self.kind == "list":
            return ", ".join(str(v) for v in value)
        if self.kind == "json":
            return json.dumps(value, sort_keys=True) if value else ""
        if self.kind == "datetime":
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if moment.tzinfo:
                moment = moment.astimezone(UTC)
            return moment.strftime("%Y-%m-%dT%H:%M")
        if self.kind == "float":
            return f"{float(value):g}"
        return str(value)

    def parse(self, raw: str) -> Any:
        """Form text -> the API value (``None`` for an empty field)."""
        raw = raw.strip()
        if self.kind == "bool":
            return raw in ("on", "true", "1")
        if not raw:
            return None
        try:
            if self.kind == "int":
                return int(raw)
            if self.kind == "float":
                return float(raw)
        except ValueError:
            raise FormError(self.name, f"expected a number, got {raw!r}") from None
        if self.kind == "list":
            return [p.strip() for p in raw.replace("\n", ",").split(",") if p.strip()]
        if self.kind == "json":
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise FormError(self.name, f"not valid JSON: {exc}") from None
            if not isinstance(value, dict):
                raise FormError(self.name, "must be a JSON object")
            return value
        if self.kind == "datetime":
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                raise FormError(self.name, f"expected a date and time, got {raw!r}") from None
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
        return raw


def _kind(name: str, info: Any, struct: type[Any]) -> str:
    if name == "team_id" and struct is KeyFields:  # a key's team is picked from a list
        return "team"
    if isinstance(info, msgspec.inspect.UnionType):
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    return _KINDS.get(type(info), "text")


_KINDS: dict[type[Any], str] = {
    msgspec.inspect.IntType: "int",
    msgspec.inspect.FloatType: "float",
    msgspec.inspect.BoolType: "bool",
    msgspec.inspect.ListType: "list",
    msgspec.inspect.DictType: "json",
    msgspec.inspect.DateTimeType: "datetime",
}


def _fields(struct: type[Any]) -> list[Field]:
    out = []
    for f in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
        label, hint = LABELS.get(f.name, (f.name.replace("_", " ").capitalize(), ""))
        out.append(Field(f.name, _kind(f.name, f.type, struct), label, hint))
    return out


KEY_FIELDS = _fields(KeyFields)
TEAM_FIELDS = _fields(TeamFields)


def key_fields(*, edit: bool) -> list[Field]:
    return [f for f in KEY_FIELDS if not (edit and f.name in KEY_NOT_EDITABLE)]


def team_fields(*, edit: bool) -> list[Field]:
    return [f for f in TEAM_FIELDS if not (edit and f.name in TEAM_NOT_EDITABLE)]


def create_body(fields: list[Field], form: dict[str, str]) -> dict[str, Any]:
    """The API body of a create form: every filled field (unticked boxes are left out)."""
    body: dict[str, Any] = {}
    for field in fields:
        value = field.parse(form.get(field.name, ""))
        if value is not None and value is not False:
            body[field.name] = value
    return body


def edit_body(fields: list[Field], form: dict[str, str], current: dict[str, Any]) -> dict[str, Any]:
    """The API body of an edit form: only what the operator changed (an emptied field is sent
    as null, which clears it)."""
    body: dict[str, Any] = {}
    for field in fields:
        raw = form.get(field.name, "").strip()
        if raw == field.text(current.get(field.name)):
            continue
        body[field.name] = field.parse(raw)
    return body
