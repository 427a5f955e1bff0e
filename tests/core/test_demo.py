"""`outcrop demo` starts with every installed plugin and its printed commands work as pasted."""

import shlex
import subprocess
import sys

from .procs import free_port, wait_ready


def test_demo_prints_commands_that_work():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "outcrop", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = []
        for line in iter(proc.stdout.readline, ""):
            printed.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C to stop."):
                break
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        assert any(x.startswith("Master key: sk-demo-") for x in printed)
        curls = [x for x in printed if x.startswith("curl ")]
        assert curls, printed
        for cmd in curls:
            r = subprocess.run(
                [*shlex.split(cmd), "-s", "-w", "\n%{http_code}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            body, _, code = r.stdout.rpartition("\n")
            assert code == "200", f"{cmd}\n-> {code} {body}"
            assert body.strip(), cmd
        if "python - <<'EOF'" in printed:  # the OpenAI SDK snippet, when a chat plugin is installed
            start = printed.index("python - <<'EOF'") + 1
            script = "\n".join(printed[start : printed.index("EOF", start)])
            r = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
            )
            assert r.returncode == 0 and r.stdout.strip(), r.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
