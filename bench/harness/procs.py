"""Processes and the machine: pinned launches, /proc readings, the quiet-machine gate.

CPU times come from ``/proc/PID/stat`` (utime + stime, in clock ticks) and ``/proc/stat``;
memory from ``VmRSS`` in ``/proc/PID/status``. "Foreign" CPU is the machine's busy time minus
what the benchmark's own processes used: it says whether something else ran during a figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
#: Seconds of /proc/stat sampling behind each quiet-machine check (--quick: 0.5).
QUIET_SAMPLE_S = 1.0
GATEWAY_CORE, LOAD_CORE = 0, 1


def add_quiet_options(p: argparse.ArgumentParser, *, max_load: bool = False) -> None:
    """The quiet-machine gates every measuring script shares (``--max-load`` only where the
    script waits for a quiet machine before it starts)."""
    p.add_argument("--max-busy", type=float, default=0.10, help="quiet machine: max busy CPU share")
    if max_load:
        p.add_argument(
            "--max-load", type=float, default=1.0, help="quiet machine at start: max load average"
        )
    p.add_argument(
        "--max-foreign",
        type=float,
        default=0.05,
        help="retry a figure when other processes used more than this share of the CPU",
    )
    p.add_argument(
        "--quiet-timeout", type=float, default=600.0, help="max seconds to wait for quiet"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin_self(core: int = LOAD_CORE) -> None:
    os.sched_setaffinity(0, {core})


def launch(
    argv: Sequence[str],
    core: int | None,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` pinned to ``core`` (taskset; ``None``: on any core), stdout and stderr to
    ``log``."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    with open(log, "ab") as out:  # the child gets its own copy of the descriptor
        return subprocess.Popen(
            [*pin, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (by its pid), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def named(comm: str) -> list[int]:
    """Pids of the processes whose name (``/proc/PID/comm``) is ``comm``."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == comm:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


class Placed:
    """Processes the benchmark did not start (the machine's Redis) moved to ``core`` for the
    run, each thread of each, and put back where they were afterwards. Left alone (and said so)
    when the affinity cannot be changed."""

    def __init__(self, pids: list[int], core: int) -> None:
        self.pids, self.core = pids, core
        self.before: dict[int, set[int]] = {}
        self.problem = ""

    def place(self) -> None:
        for pid in self.pids:
            for tid in _threads(pid):
                try:
                    self.before[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, {self.core})
                except OSError as exc:
                    self.problem = f"{pid}: {exc}"

    def restore(self) -> None:
        for tid, cores in self.before.items():
            try:
                os.sched_setaffinity(tid, cores)
            except OSError:
                pass  # the thread ended
        self.before = {}


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = exc
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s: {last}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def serving_pid(pid: int) -> int:
    """The process that serves requests: ``pid``, or its one worker when ``pid`` supervises a
    forked worker running the same command (granian's single worker is a child of
    ``outcrop serve``): RSS per worker is read there, not off the supervisor."""
    try:
        own = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return pid
    twins = []
    for child in children(pid):
        try:
            if (Path("/proc") / str(child) / "cmdline").read_bytes() == own:
                twins.append(child)
        except OSError:
            continue
    return twins[0] if len(twins) == 1 else pid


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def loadavg() -> tuple[float, float, float]:
    a, b, c = Path("/proc/loadavg").read_text().split()[:3]
    return float(a), float(b), float(c)


def busy_fraction(seconds: float = 1.0) -> float:
    b0, t0 = machine_ticks()
    time.sleep(seconds)
    b1, t1 = machine_ticks()
    return (b1 - b0) / max(t1 - t0, 1)


def wait_quiet(max_busy: float, timeout: float, say=print) -> dict[str, float]:
    """Block until the machine is idle (busy share of all CPUs <= ``max_busy`` over one second),
    at most ``timeout`` seconds. Our own servers are idle between figures, so any busy time is
    someone else's (a test suite, a build)."""
    start = time.monotonic()
    # nothing to wait for when any load passes (--no-assert): a short sample for the record
    busy = busy_fraction(0.2 if max_busy >= 1.0 else QUIET_SAMPLE_S)
    warned = False
    while busy > max_busy and time.monotonic() - start < timeout:
        if not warned:
            say(
                f"  waiting for a quiet machine (busy {busy:.0%} > {max_busy:.0%}, "
                f"load {loadavg()[0]:.2f})"
            )
            warned = True
        busy = busy_fraction(2.0)
    return {
        "busy": round(busy, 3),
        "waited_s": round(time.monotonic() - start, 1),
        "load1": loadavg()[0],
        "quiet": busy <= max_busy,
    }


@dataclass
class Window:
    """CPU accounting over one measurement: the gateway's ticks, ours, and everyone else's."""

    pids: dict[str, list[int]]
    start_ticks: dict[str, int] = field(default_factory=dict)
    start_machine: tuple[int, int] = (0, 0)
    start_children: float = 0.0
    start_self: float = 0.0

    def __enter__(self) -> Window:
        self.start_ticks = {k: sum(_safe_ticks(p) for p in v) for k, v in self.pids.items()}
        self.start_machine = machine_ticks()
        self.start_children = _rusage(resource.RUSAGE_CHILDREN)
        self.start_self = _rusage(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ticks = {
            k: sum(_safe_ticks(p) for p in v) - self.start_ticks[k] for k, v in self.pids.items()
        }
        busy1, total1 = machine_ticks()
        self.machine_busy = busy1 - self.start_machine[0]
        self.machine_total = total1 - self.start_machine[1]
        # reaped children (wrk) and this process, in ticks
        self.ours_extra = (
            _rusage(resource.RUSAGE_CHILDREN)
            - self.start_children
            + _rusage(resource.RUSAGE_SELF)
            - self.start_self
        ) * TICK

    def seconds(self, name: str) -> float:
        return self.ticks[name] / TICK

    @property
    def foreign_share(self) -> float:
        """Busy time of processes that are not ours, as a share of all CPUs' time."""
        ours = sum(self.ticks.values()) + self.ours_extra
        return max(self.machine_busy - ours, 0) / max(self.machine_total, 1)


def _safe_ticks(pid: int) -> int:
    try:
        return cpu_ticks(pid)
    except OSError:
        return 0


def _rusage(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - self._t0, rss_mb(self.pid)))
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max((v for _, v in self.samples), default=0.0)
