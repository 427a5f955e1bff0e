"""Claude Code itself (the npm package ``@anthropic-ai/claude-code``), run headless with ``-p``
and ``ANTHROPIC_BASE_URL`` at the gateway, against the simulator: a prompt, and a tool-use turn
that writes a file.

The package is installed once into ``.cache/claude-code`` (or ``$OUTCROP_CLAUDE_CODE_DIR``) with
npm; without Node.js and npm, or without access to the npm registry on the first run, these
tests fail with the reason. Claude Code's own traffic elsewhere (telemetry, updates) is switched
off, and anything it still tries goes to a local proxy that records and refuses it: the test
fails if there is any.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outcrop.testing import CallEvents, ClaudeReply, ToolUse

from .common import MASTER_KEY

VERSION = "2.1.332"
ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = Path(os.environ.get("OUTCROP_CLAUDE_CODE_DIR") or ROOT / ".cache" / "claude-code")
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The ``claude`` executable, installed with npm on first use (one installer at a time)."""
    binary = INSTALL_DIR / "node_modules" / ".bin" / "claude"
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_DIR.parent / "claude-code.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _works(binary):
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("Claude Code tests need Node.js and npm on PATH", pytrace=False)
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(INSTALL_DIR),
                    f"@anthropic-ai/claude-code@{VERSION}",
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0 or not _works(binary):
                pytest.fail(
                    f"npm could not install @anthropic-ai/claude-code@{VERSION} into "
                    f"{INSTALL_DIR}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}",
                    pytrace=False,
                )
    return binary


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and VERSION in done.stdout


class RefusingProxy:
    """A loopback HTTP proxy that records where each connection wanted to go, and refuses it."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.attempts.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def proxy() -> Iterator[RefusingProxy]:
    refusing = RefusingProxy()
    yield refusing
    refusing.close()


@pytest.fixture
def code_gateway(gateway_factory: Any, simulator_params: Any, recorder: CallEvents) -> Any:
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "sonnet", "litellm_params": simulator_params(f"bedrock/{SONNET}")},
                {"model_name": "haiku", "litellm_params": simulator_params(f"bedrock/{HAIKU}")},
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


def run_claude(
    claude_bin: Path, gateway: Any, proxy: RefusingProxy, cwd: Path, prompt: str, *args: str
) -> dict[str, Any]:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": MASTER_KEY,
        # Anthropic's model ids: the gateway maps them to the deployments of those models
        "ANTHROPIC_MODEL": "claude-sonnet-4-5",
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-haiku-4-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "HTTPS_PROXY": proxy.url,
        "HTTP_PROXY": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [str(claude_bin), "-p", prompt, "--output-format", "json", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert proxy.attempts == [], f"Claude Code tried to leave the machine: {proxy.attempts}"
    return json.loads(done.stdout)


def test_claude_code_completes_a_prompt(
    claude_bin: Path,
    code_gateway: Any,
    bedrock_simulator: Any,
    recorder: CallEvents,
    proxy: RefusingProxy,
    tmp_path: Path,
) -> None:
    bedrock_simulator.reply(ClaudeReply("Hello through the gateway!", usage=(40, 6)))
    result = run_claude(claude_bin, code_gateway, proxy, tmp_path, "Say hello")
    assert result["is_error"] is False, result
    assert result["result"] == "Hello through the gateway!"
    main = [r for r in bedrock_simulator.requests if r.params.get("modelId") == SONNET]
    assert main and main[0].operation == "InvokeModelWithResponseStream"
    sent = json.loads(main[0].body)
    assert sent["anthropic_version"] == "bedrock-2023-05-31"
    assert sent["tools"] and sent["system"]
    event = next(e for e in recorder.wait_count(1) if e.model == "sonnet")
    assert event.status == 200 and event.stream
    assert event.principal is not None and event.principal.kind == "master_key"
    assert event.usage.completion_tokens == 6 and event.cost


def test_claude_code_tool_use_turn(
    claude_bin: Path,
    code_gateway: Any,
    bedrock_simulator: Any,
    proxy: RefusingProxy,
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = work / "note.txt"
    write = ToolUse("Write", {"file_path": str(target), "content": "written by Claude Code\n"})
    bedrock_simulator.reply(ClaudeReply(tool_calls=[write]), path=SONNET, times=1)
    bedrock_simulator.reply(ClaudeReply("I wrote note.txt."), path=SONNET)
    result = run_claude(
        claude_bin,
        code_gateway,
        proxy,
        work,
        "Write 'written by Claude Code' to note.txt",
        "--allowedTools",
        "Write",
    )
    assert result["is_error"] is False, result
    assert result["result"] == "I wrote note.txt."
    assert target.read_text() == "written by Claude Code\n"
    turns = [json.loads(r.body) for r in bedrock_simulator.requests if SONNET in r.path]
    assert len(turns) >= 2
    answer = turns[1]["messages"]
    results = [
        block
        for message in answer
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert [r["tool_use_id"] for r in results] == [write.id]
