"""docs/observability.md lists exactly the metrics a scrape shows, and the Grafana dashboard only
queries metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openai

from outcrop.testing import ConverseReply

from .common import MASTER_KEY, scrape

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = ("_bucket", "_count", "_sum")


def _documented() -> set[str]:
    text = (DOCS / "observability.md").read_text()
    return set(re.findall(r"^\| `(outcrop_[a-z_]+)` \|", text, re.MULTILINE))


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_the_docs_list_every_metric_a_scrape_shows(prom_gateway, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("fine"), times=1)
    openai.OpenAI(base_url=prom_gateway.url + "/v1", api_key=MASTER_KEY).chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}]
    )
    s = scrape(prom_gateway.url)
    assert not [n for n in s.names() if n.endswith("_created")]
    families = {_base(n) for n in s.names()}
    documented = _documented()
    # retries, fallbacks, refusals and plugin levels appear once something counts them
    assert families - documented == set()
    assert documented - families <= {
        "outcrop_retries_total",
        "outcrop_fallbacks_total",
        "outcrop_refusals_total",
        "outcrop_spend_buffer_rows",
        "outcrop_time_to_first_token_seconds",
    }


def test_the_dashboard_queries_documented_metrics():
    dashboard = json.loads((DOCS / "grafana" / "outcrop-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {_base(m) for e in exprs for m in re.findall(r"outcrop_[a-z_]+", e)}
    assert used and used <= _documented(), used - _documented()
