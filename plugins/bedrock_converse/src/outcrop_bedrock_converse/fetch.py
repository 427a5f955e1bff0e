"""Opt-in fetching of ``http(s)`` image URLs, for deployments whose operator lists the hosts.

A gateway that fetches any URL a caller names can be made to reach anything its network can
(SSRF: cloud metadata, internal services). So nothing is fetched unless the deployment lists
the hosts it may fetch from (``image_url_hosts``, deployment config only: a request body cannot
widen it), and then:

- only ``http`` and ``https``, on a listed host (``images.example.com``, or ``*.example.com``
  for its subdomains);
- the address the name resolves to must be public: loopback, private, link-local (cloud
  metadata), multicast and reserved addresses are refused, checked on the address actually
  connected to, so a name that resolves to an internal address (DNS rebinding) is refused too.
  An internal address is fetched only when that very address is listed (``10.0.0.7``);
- no redirects, no proxies from the environment, at most ``MAX_IMAGE_BYTES`` read, a 10 s
  deadline per request; the answer must be 200 with an image media type.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from outcrop import ChatCall, OutcropError, clip

from .content import MAX_IMAGE_BYTES, MAX_IMAGES

#: The deployment key that turns fetching on, with the hosts it may fetch from.
HOSTS_KEY = "image_url_hosts"
TIMEOUT_S = 10.0
_SCHEMES = ("http://", "https://")
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)


def _bad(message: str, param: str) -> OutcropError:
    return OutcropError(message, 400, param=param, code="invalid_content")


@dataclass(frozen=True, slots=True)
class HostRules:
    """The hosts a deployment may fetch images from."""

    exact: frozenset[str]
    suffixes: tuple[str, ...]

    @classmethod
    def parse(cls, value: Any) -> HostRules:
        """The deployment's ``image_url_hosts`` (checked once, when the route is parsed)."""
        if not isinstance(value, list) or not value:
            raise _bad(f"{HOSTS_KEY}: expected a non-empty list of host names", HOSTS_KEY)
        exact: set[str] = set()
        suffixes: list[str] = []
        for i, item in enumerate(value):
            host = item.strip().lower().rstrip(".") if isinstance(item, str) else ""
            wildcard = host.startswith("*.")
            bare = host.removeprefix("*.")
            if _is_ip(bare) and not wildcard:
                exact.add(str(ipaddress.ip_address(bare.strip("[]"))))
            elif _HOST_NAME.fullmatch(bare):
                if wildcard:
                    suffixes.append("." + bare)
                else:
                    exact.add(bare)
            else:
                raise _bad(
                    f"{HOSTS_KEY}[{i}]: {clip(str(item))!r} is not a host name "
                    "(example.com, *.example.com or an IP address)",
                    HOSTS_KEY,
                )
        return cls(frozenset(exact), tuple(suffixes))

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.exact or host.endswith(self.suffixes)

    def allows_address(self, address: str) -> bool:
        """Public addresses, or an internal one the operator listed by itself."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_global or str(ip) in self.exact


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def rules_for(call: ChatCall) -> HostRules | None:
    """The deployment's rules (parsed with its route), or ``None``: it fetches nothing."""
    rules: HostRules | None = call.route.data.get(HOSTS_KEY)
    return rules


def image_urls(call: ChatCall) -> list[tuple[str, str]]:
    """``(param, url)`` of every ``http(s)`` image URL in the user messages, first seen first."""
    found: list[tuple[str, str]] = []
    for i, message in enumerate(call.request.messages):
        if message.role != "user" or not isinstance(message.content, list):
            continue
        for j, part in enumerate(message.content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if isinstance(url, str) and url[:8].lower().startswith(_SCHEMES):
                found.append((f"messages[{i}].content[{j}]", url))
    return found


class InternalAddress(OSError):
    """The host name resolves only to addresses that are not fetched."""


class _GuardedResolver(AbstractResolver):
    """Resolves like the system does, then keeps only the addresses the rules allow."""

    def __init__(self, rules: HostRules) -> None:
        self._rules = rules
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._rules.allows_address(r["host"])]
        if not allowed:
            raise InternalAddress(host)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


async def _read_at_most(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes (a larger image is refused, not read whole)."""
    data = bytearray()
    while len(data) < limit:
        chunk = await answer.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _fetch_one(
    session: aiohttp.ClientSession, rules: HostRules, param: str, url: str
) -> tuple[str, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise _bad(f"{param}: image URLs with credentials are not fetched", param)
    if not rules.allows_host(host):
        raise _bad(
            f"{param}: images are fetched only from the hosts this model allows; "
            f"{clip(host)!r} is not one of them",
            param,
        )
    if _is_ip(host) and not rules.allows_address(host):
        raise _bad(f"{param}: {clip(host)!r} is an internal address, not fetched", param)
    try:
        async with session.get(url, allow_redirects=False) as answer:
            if answer.status != 200:
                raise _bad(f"{param}: fetching the image answered HTTP {answer.status}", param)
            media = (answer.content_type or "").lower()
            raw = await _read_at_most(answer, MAX_IMAGE_BYTES + 1)
    except OutcropError:
        raise
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, InternalAddress):
            raise _bad(
                f"{param}: {clip(host)!r} resolves only to internal addresses, which are not "
                "fetched",
                param,
            ) from None
        raise _bad(f"{param}: the image could not be fetched (cannot connect)", param) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = (
            "timed out" if isinstance(exc, TimeoutError) else clip(str(exc) or type(exc).__name__)
        )
        raise _bad(f"{param}: the image could not be fetched ({reason})", param) from None
    if len(raw) > MAX_IMAGE_BYTES:
        raise _bad(
            f"{param}: the image is larger than Bedrock's limit of {MAX_IMAGE_BYTES} bytes", param
        )
    if not raw:
        raise _bad(f"{param}: the image URL answered no data", param)
    return media, raw


async def fetch_images(
    rules: HostRules, urls: Iterable[tuple[str, str]]
) -> dict[str, tuple[str, bytes]]:
    """``url -> (media type, bytes)`` for each distinct URL, fetched concurrently."""
    distinct: dict[str, str] = {}
    for param, url in urls:
        distinct.setdefault(url, param)
    if len(distinct) > MAX_IMAGES:
        raise _bad(f"more than {MAX_IMAGES} images in one request", "messages")
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver(rules), limit=4, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False
    ) as session:
        tasks = [
            asyncio.ensure_future(_fetch_one(session, rules, param, url))
            for url, param in distinct.items()
        ]
        try:
            fetched = await asyncio.gather(*tasks)
        finally:  # the first failure (or a cancelled call) stops the other fetches
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return dict(zip(distinct, fetched, strict=True))
