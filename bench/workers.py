"""How throughput grows from 1 to 2 gateway workers (`outcrop serve --workers N`).

    python bench/workers.py --surface converse --seconds 5 --repeats 3

nginx (canned Bedrock answers) and wrk run on core 1 as in `bench/run.py`. One worker is pinned
to core 0; two workers are not pinned, so on a 2-core machine the second worker shares core 1
with nginx and wrk: the figure is what this machine gives, not what two free cores would. Prints
requests per second at c=32 for each worker count (median of the repeats), their ratio, and
the estimate for a machine of ``--estimate-cores`` cores (default 16) made from them: see
``estimate`` and docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import gateway as gw
from harness import procs, wrk
from harness.nginx import Nginx
from harness.surfaces import all_surfaces


def serve(workdir: Path, config: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = procs.free_port()
    argv = [gw.OUTCROP, "serve", "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers)]
    if workers == 1:
        argv = ["taskset", "-c", str(procs.GATEWAY_CORE), *argv]
    with open(workdir / f"gateway-{workers}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    procs.wait_http(url + "/health/readiness", timeout=60, proc=proc)
    return proc, url


def estimate(one: float, two: float, cores: int) -> tuple[float, float, float]:
    """(low, high, efficiency): ``cores`` workers, one per core, the load generator and the
    upstream on other machines. High: linear in the per-core figure (workers share nothing but the
    listening socket). Low: every worker past the first loses what the second lost here
    (efficiency = two / (2 x one)); pessimistic, since here the second worker shares its core with
    nginx and wrk."""
    efficiency = two / (2 * one)
    return one * cores * efficiency, one * cores, efficiency


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--surface", default="converse", help="a surface key of bench/run.py")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--estimate-cores", type=int, default=16)
    args = p.parse_args(argv)
    surface = next(s for s in all_surfaces() if s.key == args.surface)
    workdir = Path(tempfile.mkdtemp(prefix="outcrop-workers-"))
    workdir.chmod(0o755)
    nginx = Nginx(workdir)
    nginx.start()
    config = gw.write_config(workdir / "outcrop.yaml", [surface], nginx.url, None)
    rates: dict[int, float] = {}
    try:
        for workers in (1, 2):
            proc, url = serve(workdir, config, workers)
            try:
                request = [surface.gateway_request()]
                wrk.run(url, request, args.connections, 2, workdir, "warm")
                runs = [
                    wrk.run(url, request, args.connections, args.seconds, workdir, f"w{workers}")
                    for _ in range(args.repeats)
                ]
            finally:
                procs.stop(proc)
            errors = sum(r.errors for r in runs)
            rates[workers] = statistics.median(r.rps for r in runs)
            detail = " / ".join(f"{r.rps:,.0f}" for r in runs)
            print(f"{workers} worker(s): {rates[workers]:,.0f} req/s ({detail}), errors {errors}")
    finally:
        nginx.stop()
    print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x on {surface.title}")
    low, high, eff = estimate(rates[1], rates[2], args.estimate_cores)
    print(
        f"estimate for {args.estimate_cores} cores: {low:,.0f} to {high:,.0f} req/s "
        f"(per-core {rates[1]:,.0f} x {args.estimate_cores}, efficiency {eff:.2f} to 1)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
