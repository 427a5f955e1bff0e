"""LiteLLM's `include:`, `check-config --strict` and the router line of `check-config`."""

from __future__ import annotations

import pytest

from outcrop import ConfigError, load_config

from .test_cli import run

MODEL = "bedrock/agent/AGENT12345/ALIAS12345"


def _deployment(name: str) -> str:
    return (
        f"  - model_name: {name}\n    litellm_params:\n      model: {MODEL}\n"
        "      aws_region_name: us-east-1\n"
    )


def test_include_merges_model_lists_and_settings(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "more.yaml").write_text(
        "model_list:\n" + _deployment("b") + "router_settings:\n  num_retries: 1\n"
        "  allowed_fails: 7\n"
    )
    main = tmp_path / "config.yaml"
    main.write_text(
        "include:\n  - models/more.yaml\nmodel_list:\n"
        + _deployment("a")
        + "router_settings:\n  num_retries: 3\n  fallbacks: [{a: [b]}]\n"
    )
    config = load_config(main)
    assert [d.model_name for d in config.model_list] == ["a", "b"]
    assert config.router_settings.num_retries == 3  # the including file wins
    assert config.router_settings.allowed_fails == 7  # merged from the included one


def test_include_errors(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("include: [loop.yaml]\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(loop)
    missing = tmp_path / "missing.yaml"
    missing.write_text("include: [nope.yaml]\n")
    with pytest.raises(ConfigError, match=r"'nope\.yaml': no such file"):
        load_config(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("include: {a: 1}\n")
    with pytest.raises(ConfigError, match="expected a list of file paths"):
        load_config(bad)


def test_check_config_names_ignored_keys_and_strict_refuses_them(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model_list:\n"
        + _deployment("a")
        + _deployment("b")
        + "router_settings:\n  num_retries: 2\n  fallbacks: [{a: [b]}]\n  redis_host: r\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    r = run("check-config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "router: simple-shuffle; num_retries 2; fallbacks: a -> b" in r.stdout
    assert "router_settings.redis_host: use general_settings.redis_url" in r.stdout
    assert "litellm_settings.telemetry: Outcrop sends no telemetry" in r.stdout
    r = run("check-config", "--strict", str(cfg))
    assert r.returncode == 2
    assert (
        "router_settings.redis_host: use general_settings.redis_url" in r.stderr
        and "--strict" in r.stderr
    )


def test_database_url_without_a_plugin_that_uses_it_is_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-1\n  database_url: sqlite:///x.db\n")
    r = run("check-config", str(cfg), env={"OUTCROP_DISABLE_PLUGINS": "keys,admin"})
    assert r.returncode == 2
    assert "general_settings.database_url: no installed plugin keeps anything" in r.stderr
    assert "outcrop-keys" in r.stderr
    r = run("check-config", str(cfg))  # outcrop-keys installed: it is read
    assert r.returncode == 0, r.stderr
