"""Loopback only: an audit hook that refuses any connection or name lookup leaving the machine.

Installed for the whole test suite by ``tests/conftest.py``, and in every Python subprocess a
test starts (this folder is put on ``PYTHONPATH`` with a ``sitecustomize`` that installs it when
``OUTCROP_TEST_LOOPBACK_LOG`` is set). Standard library only, so it also runs in a fresh venv.

* ``socket.connect`` / ``connect_ex`` / ``sendto`` to an address outside 127.0.0.0/8 and ::1:
  refused before the system call (an audit hook that raises aborts the operation).
* ``socket.getaddrinfo`` / ``gethostbyname*`` for a name other than ``localhost`` or a numeric
  address: refused, so no DNS query for an outside name is ever sent.

Every refusal is raised as ``NonLoopbackConnection`` *and* appended to the log file: code under
test may swallow the exception (a gateway turns it into a 502), the log still fails the test.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
from typing import Any

ENV = "OUTCROP_TEST_LOOPBACK_LOG"
_LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
_CONNECT_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_LOOKUP_EVENTS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }
)
_state: dict[str, Any] = {"log": None}
_lock = threading.Lock()


class NonLoopbackConnection(RuntimeError):
    """A test tried to reach a host that is not this machine's loopback interface.

    Not an ``OSError``: code that handles network errors must not mistake it for one.
    """


def _is_loopback_ip(host: str) -> bool | None:
    """True/False for a numeric address, None for a name."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def _host_of(address: Any) -> str | None:
    """The host of a socket address; ``None`` for AF_UNIX paths and other local families."""
    if isinstance(address, tuple) and address and isinstance(address[0], str | bytes):
        host = address[0]
        return host.decode("latin-1") if isinstance(host, bytes) else host
    return None


def refusal(event: str, args: tuple[Any, ...]) -> str | None:
    """Why ``event`` must not happen (``None`` when it may)."""
    if event in _CONNECT_EVENTS:
        host = _host_of(args[-1])
        if host is None or host == "" or _is_loopback_ip(host) is not False:
            # a name here would have been resolved by getaddrinfo first (checked below)
            return None
        return f"{event} to {args[-1]!r}"
    if event in _LOOKUP_EVENTS:
        host = args[0] if args else None
        if isinstance(host, bytes):
            host = host.decode("latin-1")
        if host is None or host == "" or host.lower() in _LOCAL_NAMES:
            return None
        numeric = _is_loopback_ip(host)
        if numeric is True or (numeric is False and event != "socket.gethostbyaddr"):
            return None  # no lookup leaves the machine (a connect is checked on its own)
        return f"{event} of {host!r} (a name lookup outside the machine)"
    return None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):
        return
    why = refusal(event, args)
    if why is None:
        return
    record(why)
    raise NonLoopbackConnection(f"tests may only connect to loopback: refused {why}")


def record(line: str) -> None:
    path = _state["log"]
    if path is None:
        return
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(f"pid {os.getpid()}: {line}\n")


def take() -> list[str]:
    """The refusals logged so far (by this process and its subprocesses); clears the log."""
    path = _state["log"]
    if path is None or not os.path.exists(path):
        return []
    with _lock:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        with open(path, "w", encoding="utf-8"):
            pass
    return lines


def install(log_path: str) -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    _state["log"] = log_path
    if getattr(sys, "_outcrop_loopback_guard", False):
        return
    sys.addaudithook(_hook)
    sys._outcrop_loopback_guard = True  # type: ignore[attr-defined]
