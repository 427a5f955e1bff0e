"""The user docs stay true: shown files are the files, and every runnable block runs.

Two markers, each on the line before a fenced block:

- ``<!-- file: PATH -->``: the block shows the file at PATH (from the repository root) as it is;
- ``<!-- runnable -->``: the block is Python that runs as written, with AWS pointed at the
  Bedrock simulator (test credentials, us-west-2, ``AWS_ENDPOINT_URL``). Where it calls a gateway
  at ``http://localhost:4000``, a gateway serves the page's ``<!-- runnable-config -->`` YAML
  block there (``KEY`` is its master key); blocks of one page share their names, in order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(
    r"^<!-- (?P<marker>file: (?P<path>\S+)|runnable|runnable-config) -->\n"
    r"```[^\n]*\n(?P<code>.*?)^```$",
    re.M | re.S,
)
GATEWAY = "http://localhost:4000"
KEY = "sk-docs-test"


def _blocks(marker: str) -> list[tuple[str, str, str]]:
    """(page, path or "", code) of every block with ``marker`` (``file`` or ``runnable``)."""
    found = []
    for page in PAGES:
        for m in BLOCK.finditer(page.read_text()):
            if m["marker"].split(":")[0] == marker:
                found.append((str(page.relative_to(ROOT)), m["path"] or "", m["code"]))
    return found


def test_the_markers_are_used():
    assert _blocks("file") and _blocks("runnable")


@pytest.mark.parametrize(("page", "path", "code"), _blocks("file"), ids=lambda v: str(v)[:60])
def test_a_shown_file_is_the_file(page, path, code):
    assert code == (ROOT / path).read_text(), f"{page} shows an outdated {path}"


def test_the_example_plugin_is_shown_whole():
    shown = {path for _, path, _ in _blocks("file")}
    example = ROOT / "docs" / "examples"
    files = {str(p.relative_to(ROOT)) for p in example.rglob("*") if p.suffix in {".py", ".toml"}}
    files = {f for f in files if not f.endswith("__init__.py")}
    assert files and files <= shown


def _pages_with_runnable_blocks() -> list[str]:
    return sorted({page for page, _, _ in _blocks("runnable")})


@pytest.fixture
def aws_at_the_simulator(bedrock_simulator, monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    # outcrop.completion keeps one gateway per config: a fresh (empty) one for each page
    config = tmp_path / "python-api.yaml"
    config.write_text("model_list: []\n")
    monkeypatch.setenv("OUTCROP_CONFIG", str(config))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", bedrock_simulator.url)


@pytest.mark.parametrize("page", _pages_with_runnable_blocks())
def test_runnable_blocks_run(page, aws_at_the_simulator, gateway_factory, capsys):
    text = (ROOT / page).read_text()
    blocks = [m for m in BLOCK.finditer(text)]
    configs = [yaml.safe_load(m["code"]) for m in blocks if m["marker"] == "runnable-config"]
    runnable = [m["code"] for m in blocks if m["marker"] == "runnable"]
    url = GATEWAY
    if any(GATEWAY in code for code in runnable):
        assert configs, f"{page}: a block calls the gateway but the page has no runnable-config"
        config = configs[0]
        config.setdefault("general_settings", {})["master_key"] = KEY
        url = gateway_factory(config).url
    namespace: dict[str, object] = {"__name__": "__docs__", "KEY": KEY}
    for index, code in enumerate(runnable):
        exec(
            compile(code.replace(GATEWAY, url), f"{page} (runnable block {index + 1})", "exec"),
            namespace,
        )
    capsys.readouterr()  # what the blocks print is for the reader; failures raise
