"""Meta-tests (datasette style): every hook is documented with its exact signature and tested."""

import inspect
import re
from pathlib import Path

import pytest

from outcrop import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("outcrop_")
]
DOC = (ROOT / "docs" / "plugin_hooks.md").read_text()


def _signature(name: str) -> str:
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}"


def test_there_are_hooks():
    assert {
        "outcrop_parse_route",
        "outcrop_translate_request",
        "outcrop_sign_request",
        "outcrop_translate_response",
        "outcrop_after_call",
        "outcrop_register_routes",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_exact_signature(hook):
    assert f"## {hook}(" in DOC, f"{hook} has no section in docs/plugin_hooks.md"
    assert _signature(hook) in DOC, f"docs/plugin_hooks.md must show: {_signature(hook)}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring(hook):
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "Called" in doc or "called" in doc, f"{hook}'s docstring must say when it is called"


@pytest.mark.parametrize("hook", HOOKS)
def test_first_result_hooks_say_so(hook):
    first = bool(getattr(hookspecs, hook).outcrop_spec.get("firstresult"))
    doc = getattr(hookspecs, hook).__doc__ or ""
    section = DOC.split(f"## {hook}(", 1)[1].split("\n## ", 1)[0]
    assert ("first result wins" in doc.lower()) == first
    assert ("**First result wins.**" in section) == first


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_in_a_test(hook):
    tests = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_hooks_meta.py"]
    pattern = re.compile(rf"def {hook}\(")
    assert any(pattern.search(p.read_text()) for p in tests), f"no test implements {hook}"
