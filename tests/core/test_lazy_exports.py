"""`import outcrop` is cheap: its public names are imported on first use, listed three ways that
this test keeps equal (the name -> module map, the typing imports, ``__all__``)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import outcrop
import outcrop.testing


@pytest.mark.parametrize("package", [outcrop, outcrop.testing], ids=lambda p: p.__name__)
def test_lazy_names_match_the_typing_imports_and_all(package):
    tree = ast.parse(Path(package.__file__).read_text())
    (typing_block,) = [
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    ]
    typed = {
        alias.name: "." * node.level + (node.module or "")
        for node in typing_block.body
        for alias in node.names
    }
    assert typed == package._EXPORTS
    eager = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level and node.module != "lazy"
        for alias in node.names
    }
    assert package.__all__ == sorted(package.__all__, key=_ruff_order)
    assert set(package.__all__) == {
        *package._EXPORTS,
        *eager,
        *(["__version__"] if package is outcrop else []),
    }
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def _ruff_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 ("isort-style") order: CONSTANTS, then Classes, then the rest."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_hookimpl_is_the_marker_even_when_its_module_is_imported_first():
    code = (
        "import outcrop.hookimpl, pluggy, outcrop; "
        "assert isinstance(outcrop.hookimpl, pluggy.HookimplMarker), outcrop.hookimpl"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_import_outcrop_loads_no_server_or_aws_code():
    code = (
        "import sys, outcrop, outcrop.testing; "
        "print(sorted(m for m in ('starlette', 'botocore', 'aiohttp', 'hypercorn', 'msgspec') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
