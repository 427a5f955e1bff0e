"""How throughput grows from 1 to 2 gateway workers (`outcrop serve --workers N`).

    python bench/workers.py --surface converse --seconds 5 --repeats 3 [--server granian]

nginx (canned Bedrock answers) and wrk run on core 1 as in `bench/run.py`. One worker is pinned
to core 0; two workers are not pinned, so on a 2-core machine the second worker shares core 1
with nginx and wrk: the figure is what this machine gives, not what two free cores would. Prints
requests per second at c=32 for each worker count (median of the repeats), the CPU per request
of every process of the gateway, their ratio, and the estimate for a machine of
``--estimate-cores`` cores (default 16) made from them (``harness.scaling.estimate``). `bench/run.py`
measures the same in its full run, for each server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import gateway as gw
from harness import procs, scaling, wrk
from harness.nginx import Nginx
from harness.surfaces import all_surfaces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--surface", default="converse", help="a surface key of bench/run.py")
    p.add_argument("--server", default=gw.DEFAULT_SERVER, help="`outcrop serve --server NAME`")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--estimate-cores", type=int, default=16)
    args = p.parse_args(argv)
    procs.pin_self(procs.LOAD_CORE)
    surface = next(s for s in all_surfaces() if s.key == args.surface)
    workdir = Path(tempfile.mkdtemp(prefix="outcrop-workers-"))
    workdir.chmod(0o755)
    nginx = Nginx(workdir)
    nginx.start()
    config = gw.write_config(workdir / "outcrop.yaml", [surface], nginx.url, None)
    figures: dict[int, dict] = {}
    try:
        for workers in scaling.COUNTS:
            g = scaling.start(workdir, config, args.server, workers)
            try:
                request = [surface.gateway_request()]
                wrk.run(g.url, request, args.connections, 2, workdir, "warm")
                runs = []
                for i in range(args.repeats):
                    pids = [g.pid, *procs.children(g.pid)]
                    with procs.Window({"target": pids}) as window:
                        res = wrk.run(
                            g.url, request, args.connections, args.seconds, workdir, f"w{i}"
                        )
                    cpu_ms = 1000 * window.seconds("target") / max(res.requests, 1)
                    runs.append({"gateway": {"rps": res.rps, "cpu_ms_per_request": cpu_ms}})
                    runs[-1]["gateway"]["errors"] = res.errors
            finally:
                g.stop()
            figures[workers] = scaling.summarize(runs)
            detail = " / ".join(f"{x['gateway']['rps']:,.0f}" for x in runs)
            f = figures[workers]
            print(
                f"{workers} worker(s): {f['rps']:,.0f} req/s ({detail}), "
                f"CPU {f['cpu_ms_per_request']:.3f} ms/request, errors {f['errors']}"
            )
    finally:
        nginx.stop()
    one, two = figures[1], figures[2]
    print(
        f"2 workers / 1 worker: {two['rps'] / one['rps']:.2f}x on {surface.title} ({args.server})"
    )
    est = scaling.estimate(one, two, args.estimate_cores)
    print(
        f"estimate for {est['cores']} cores: linear {est['linear']:,} req/s "
        f"(per-core {est['per_core_rps']:,.0f} x {est['cores']}), by CPU {est['cpu']:,}, "
        f"low {est['low']:,} (efficiency {est['efficiency']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
