"""Look for leaks: a soak in one process under ``tracemalloc``, keys, spend rows and limits on.

    python bench/leaks.py --seconds 120

The gateway (every installed plugin, a master key, a SQLite key store in a temporary folder,
Prometheus on) and the Bedrock simulator run on server threads in this process; a client thread
calls chat on each demo deployment, the native pass-through and ``/v1/models`` with virtual keys
that have rpm/tpm/parallel limits and a budget, and, every tenth call, a key that does not exist.
After a warm-up (``--warmup`` seconds) it takes a ``tracemalloc`` snapshot, soaks, takes another
and prints the allocation sites that grew most, with the traced total and RSS at both points.
A flat soak shows no site growing with the number of calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from startup_memory import MASTER_KEY, Client, call_kinds, rss_mb, write_config

from outcrop.app import create_app
from outcrop.cli import _load
from outcrop.logs import configure_logging
from outcrop.testing.server import ServerThread
from outcrop.testing.simulator import BedrockSimulator

LIMITS = {"rpm_limit": 1_000_000, "tpm_limit": 100_000_000, "max_parallel_requests": 100}


def new_key(client: Client, n: int) -> str:
    body = {"key_alias": f"soak-{n}", "max_budget": 1_000_000.0, **LIMITS}
    status, answer = client.call("POST", "/key/generate", MASTER_KEY, body)
    if status != 200:
        raise RuntimeError(f"/key/generate answered {status}: {answer[:200]!r}")
    return str(json.loads(answer)["key"])


def soak(url_port: int, config: dict[str, Any], stop: threading.Event, counts: dict) -> None:
    client = Client(url_port)
    keys = [new_key(client, n) for n in range(4)]
    kinds = call_kinds(client, config)
    i = 0
    while not stop.is_set():
        method, path, body = kinds[i % len(kinds)]
        key = f"sk-unknown-{i}" if i % 10 == 9 else keys[i % len(keys)]
        status, _ = client.call(method, path, key, body)
        counts[status] = counts.get(status, 0) + 1
        i += 1
    client.close()


def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> list[str]:
    grown = [s for s in after.compare_to(before, "traceback") if s.size_diff > 0]
    lines = []
    for stat in sorted(grown, key=lambda s: -s.size_diff)[:n]:
        frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback]
        lines.append(
            f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
            + " <- ".join(reversed(frames[-4:]))
        )
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="the measured soak")
    p.add_argument("--warmup", type=float, default=20.0)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    tracemalloc.start(6)
    configure_logging("WARNING")
    simulator = ServerThread(BedrockSimulator())
    simulator.start()
    with tempfile.TemporaryDirectory(prefix="outcrop-leaks-") as tmp:
        path = write_config(Path(tmp), simulator.url, every_plugin=True)
        config = yaml.safe_load(path.read_text())
        config["litellm_settings"] = {"callbacks": ["prometheus"]}
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        gateway = ServerThread(create_app(_load(str(path))))
        gateway.start()
        port = int(gateway.url.rsplit(":", 1)[1])
        stop, counts = threading.Event(), {}
        worker = threading.Thread(target=soak, args=(port, config, stop, counts), daemon=True)
        worker.start()
        try:
            time.sleep(args.warmup)
            if not worker.is_alive():
                raise RuntimeError("the client thread died (its traceback is above)")
            gc.collect()
            calls0, rss0 = sum(counts.values()), rss_mb(os.getpid())
            traced0 = tracemalloc.get_traced_memory()[0]
            first = tracemalloc.take_snapshot()
            time.sleep(args.seconds)
            gc.collect()
            calls1, rss1 = sum(counts.values()), rss_mb(os.getpid())
            traced1 = tracemalloc.get_traced_memory()[0]
            second = tracemalloc.take_snapshot()
        finally:
            stop.set()
            worker.join(30)
            gateway.stop()
            simulator.stop()
    print(f"calls in the soak: {calls1 - calls0:,} (statuses over the run: {counts})")
    print(f"traced: {traced0 / 2**20:.2f} -> {traced1 / 2**20:.2f} MiB")
    print(
        f"RSS (tracemalloc's traces and the first snapshot included): {rss0:.1f} -> {rss1:.1f} MB"
    )
    print("allocation sites that grew most:")
    print("\n".join(top_growth(first, second, args.top)) or "  none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
