"""The pytest plugin loads in every pytest session wherever outcrop is installed: it must not
import the gateway, botocore or the HTTP stacks until a fixture asks for them."""

import subprocess
import sys
import textwrap

HEAVY = ("starlette", "botocore", "aiohttp", "hypercorn", "msgspec", "structlog", "yaml")


def test_a_bare_pytest_session_imports_nothing_heavy(tmp_path):
    (tmp_path / "test_bare.py").write_text(
        textwrap.dedent(f"""
        import sys

        def test_bare():
            assert "outcrop.testing.pytest_plugin" in sys.modules
            loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
            assert loaded == [], loaded
    """)
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bare.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_fixtures_still_bring_what_they_need(tmp_path):
    (tmp_path / "test_fixtures.py").write_text(
        textwrap.dedent("""
        import httpx

        def test_gateway(gateway_factory, simulator_params, bedrock_simulator, outcrop_plugin):
            gateway = gateway_factory({})
            assert httpx.get(gateway.url + "/health/readiness").status_code == 200
            assert simulator_params("m")["api_base"] == bedrock_simulator.url
    """)
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_fixtures.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
