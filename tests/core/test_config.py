"""Config loading: LiteLLM's format, env references, aliases, and field-path errors."""

import textwrap

import pytest

from outcrop.config import load_config, parse_config
from outcrop.errors import ConfigError

LITELLM_AGENT_CONFIG = """
model_list:
  - model_name: bedrock-agent-1
    litellm_params:
      model: bedrock/agent/L1RT58GYRW/MFPSBCXYTW
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      aws_region_name: us-west-2
  - model_name: agentcore-runtime-prod
    litellm_params:
      model: bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my-agent-runtime
      aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
      aws_region_name: us-west-2
      qualifier: production
  - model_name: my-bedrock-model
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: us-east-1
      custom_llm_provider: bedrock
general_settings:
  master_key: sk-1234
"""


def write(tmp_path, text):
    p = tmp_path / "config.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_litellm_config_loads_with_env_references(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secretfromenv")
    cfg = load_config(write(tmp_path, LITELLM_AGENT_CONFIG))
    first, second, third = cfg.model_list
    assert first.model_name == "bedrock-agent-1"
    assert first.params.aws_access_key_id == "AKIDFROMENV"
    assert first.params.aws_secret_access_key == "secretfromenv"
    assert second.params.extra == {"qualifier": "production"}
    assert third.params.extra == {}  # custom_llm_provider is accepted and ignored
    assert cfg.general_settings.master_key == "sk-1234"


def test_params_alias_and_endpoint_alias():
    cfg = parse_config(
        {
            "model_list": [
                {
                    "model_name": "a",
                    "params": {
                        "model": "x/y",
                        "aws_bedrock_runtime_endpoint": "http://127.0.0.1:9",
                    },
                },
                {
                    "model_name": "b",
                    "litellm_params": {
                        "model": "x/z",
                        "api_base": "https://vpce.example",
                        "weight": 3,
                    },
                },
            ]
        }
    )
    assert cfg.model_list[0].params.api_base == "http://127.0.0.1:9"
    assert cfg.model_list[1].params.weight == 3


def test_errors_name_field_paths(monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "model_list": [
                    {"model_name": "ok", "litellm_params": {"model": "a/b"}},
                    {"model_name": "bad", "litellm_params": {"model": 42}},
                    {
                        "litellm_params": {
                            "model": "a/b",
                            "aws_secret_access_key": "os.environ/NOPE_NOT_SET",
                            "aws_access_key_id": "AKID",
                        }
                    },
                    {"model_name": "w", "litellm_params": {"model": "a/b", "weight": "heavy"}},
                    {"model_name": "nomodel", "litellm_params": {"aws_region_name": "us-east-1"}},
                    {
                        "model_name": "url",
                        "litellm_params": {"model": "a/b", "api_base": "ftp://x"},
                    },
                ],
                "general_settings": {"connect_timeout": "soon"},
            }
        )
    text = "\n".join(info.value.errors)
    assert "model_list[1].litellm_params.model: expected `str`, got `int`" in text
    assert "model_list[2].model_name: required" in text
    assert (
        "model_list[2].litellm_params.aws_secret_access_key: environment variable NOPE_NOT_SET is not set"
        in text
    )
    assert "model_list[3].litellm_params.weight: expected `float`, got `str`" in text
    assert "model_list[4].litellm_params.model: required" in text
    assert "model_list[5].litellm_params.api_base: expected an http(s) URL" in text
    assert "general_settings.connect_timeout: expected `float`, got `str`" in text


def test_yaml_syntax_error_names_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "model_list:\n  - model_name: [unclosed\n"))
    assert "not valid YAML (line" in info.value.errors[0]


def test_key_pair_must_be_complete():
    with pytest.raises(
        ConfigError, match="aws_secret_access_key: required together with aws_access_key_id"
    ):
        parse_config(
            {
                "model_list": [
                    {
                        "model_name": "a",
                        "litellm_params": {"model": "a/b", "aws_access_key_id": "AKID"},
                    }
                ]
            }
        )


def test_secrets_are_not_in_repr():
    cfg = parse_config(
        {
            "model_list": [
                {
                    "model_name": "a",
                    "litellm_params": {
                        "model": "a/b",
                        "aws_access_key_id": "AKIDSECRETLOOKING",
                        "aws_secret_access_key": "topsecret",
                    },
                }
            ],
            "general_settings": {"master_key": "sk-master"},
        }
    )
    text = repr(cfg) + repr(cfg.model_list[0].params)
    assert "topsecret" not in text and "AKIDSECRETLOOKING" not in text and "sk-master" not in text


def test_litellm_settings_drop_params_and_plugin_sections():
    cfg = parse_config(
        {"litellm_settings": {"drop_params": True}, "bedrock_passthrough": {"only_aliases": True}}
    )
    assert cfg.general_settings.drop_params is True
    assert cfg.sections == {"bedrock_passthrough": {"only_aliases": True}}
