"""``outcrop serve --workers N``: throughput from one worker to two, and the estimate for a
machine of more cores made from the per-core figures.

One worker is pinned to the gateway's core; two are not pinned, so on a 2-core machine the
second worker shares the load core with nginx and wrk. Each run also counts the CPU time of every
process of the gateway (supervisor and workers): the requests per CPU-second of the workers is
the per-core figure a machine with free cores would give each worker.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from . import gateway as gw
from . import procs

#: The worker counts measured.
COUNTS = (1, 2)


def start(workdir: Path, config: Path, server: str, workers: int) -> gw.Gateway:
    """``outcrop serve --workers N`` on ``server``: one worker pinned, more not."""
    g = gw.Gateway(workdir, config, extra_args=[*gw.server_args(server), "--workers", str(workers)])
    g.log = workdir / f"gateway-{server}-{workers}w.log"
    g.core = procs.GATEWAY_CORE if workers == 1 else None
    g.start(timeout=120)
    return g


def summarize(runs: list[dict]) -> dict:
    """Medians of the runs' gateway req/s and CPU per request (every process of the gateway)."""
    return {
        "rps": round(statistics.median(x["gateway"]["rps"] for x in runs), 1),
        "cpu_ms_per_request": round(
            statistics.median(x["gateway"]["cpu_ms_per_request"] for x in runs), 4
        ),
        "errors": sum(x["gateway"]["errors"] for x in runs),
    }


def estimate(one: dict, two: dict, cores: int) -> dict:
    """req/s of ``cores`` workers, one per core, the clients and the upstream on other machines.

    * ``linear``: the per-core figure times ``cores``, the per-core figure being one pinned
      worker's req/s (its core is 100 % busy at the top concurrency). Workers share nothing on the
      request path but the listening socket, so it is the bound with every core free.
    * ``cpu``: requests per CPU-second of the two-worker run's gateway processes, times ``cores``:
      the per-core figure with whatever two workers cost each other (accept, the supervisor),
      without the core the second worker shares here with nginx and wrk.
    * ``low``: every worker past the first loses what the second lost here (efficiency = two /
      (2 x one)); pessimistic, since here the second worker shares its core with the load.
    """
    efficiency = two["rps"] / (2 * one["rps"])
    return {
        "cores": cores,
        "per_core_rps": one["rps"],
        "efficiency": round(efficiency, 3),
        "linear": round(one["rps"] * cores),
        "cpu": round(1000 / two["cpu_ms_per_request"] * cores),
        "low": round(one["rps"] * cores * efficiency),
    }
