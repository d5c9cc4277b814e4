"""Brute-force slowing: a per-client budget of failed authentication attempts.

Every client (an IPv4 address, or the /64 network of an IPv6 address, since
one host usually holds a whole /64) has a token bucket of ``burst`` failed
attempts that refills at ``per_minute`` attempts a minute.  A request whose
credentials do not prove an active token spends one attempt; a client whose
bucket is empty is answered ``429 Too Many Requests`` with ``Retry-After``
on every repository path, the management API and the web UI sign-in,
*before* its credentials are looked at, so it learns nothing more until the
bucket refills (valid credentials from that address wait too: checking them
would let the guessing go on at full speed).

Requests without credentials cost nothing (pip and uv send none until
challenged), nor do valid tokens used on a repository they may not read
(403).  The budget is per process: with N replicas or workers a client gets
N budgets, which still slows guessing by orders of magnitude.  Pull-token
secrets carry 256 bits of randomness, so the budget protects the server's
time more than the secrets.

Behind a reverse proxy every request comes from the proxy's address; run
the server with the proxy's forwarded-address handling on, or raise
``FROMSOURCE_AUTH_FAILURES_PER_MINUTE`` (0 turns the budget off).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FailureBudget", "FailurePolicy", "client_key", "client_of", "too_many_message"]


@dataclass(frozen=True)
class FailurePolicy:
    """How many failed attempts a client may make: a burst, then so many a minute.

    ``burst == 0`` turns the budget off.  ``max_clients`` bounds the memory the
    budget takes under a flood from many addresses.
    """

    burst: int = 30
    per_minute: float = 30.0
    max_clients: int = 65_536

    @classmethod
    def from_setting(cls, per_minute: int) -> FailurePolicy:
        """The policy for ``auth_failures_per_minute``: that many in a row, then that rate."""
        return cls(burst=max(per_minute, 0), per_minute=float(max(per_minute, 0)))

    @property
    def enabled(self) -> bool:
        """Whether failed attempts are counted at all."""
        return self.burst > 0 and self.per_minute > 0


def client_key(host: str | None) -> str:
    """The budget key of a client address: IPv4 as is, IPv6 by its /64 network.

    Never raises: an address that does not parse (a Unix socket path, a
    proxy's made-up name) is its own key; None (unknown) is ``"unknown"``.
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:255]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_of(scope: Mapping[str, Any]) -> str:
    """The budget key of the client of an ASGI *scope* (see :func:`client_key`)."""
    client = scope.get("client")
    host = client[0] if client else None
    return client_key(host if isinstance(host, str) else None)


def too_many_message(retry_after: int) -> str:
    """The text of a 429 answer (no secret, nothing about which check failed)."""
    return (
        f"429 Too Many Requests: too many failed sign-ins from this address; retry after "
        f"{retry_after} s with a valid token (`fromsource token list` shows active ones)\n"
    )


class FailureBudget:
    """Token buckets of failed attempts, by client key; safe across threads.

    ``retry_after(client)`` is 0 while the client may try, else the whole
    seconds until it may try once more; ``failed(client)`` spends one
    attempt.  The clock is a parameter so tests need not sleep.
    """

    def __init__(
        self, policy: FailurePolicy = FailurePolicy(), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rate = policy.per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, bucket: tuple[float, float], now: float) -> float:
        level, since = bucket
        return min(float(self.policy.burst), level + (now - since) * self._rate)

    def retry_after(self, client: str) -> int:
        """0 when *client* may attempt to authenticate, else seconds to wait (at least 1)."""
        bucket = self._buckets.get(client)  # lock-free: the common case is "never failed"
        if bucket is None or not self.policy.enabled:
            return 0
        level = self._level(bucket, self._clock())
        if level >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - level) / self._rate))

    def failed(self, client: str) -> None:
        """Spend one attempt of *client* (a request with credentials that proved nothing)."""
        if not self.policy.enabled:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.pop(client, None)
            level = self._level(bucket, now) if bucket else float(self.policy.burst)
            self._buckets[client] = (max(level - 1.0, 0.0), now)
            if len(self._buckets) > self.policy.max_clients:
                self._prune(now)

    def _prune(self, now: float) -> None:
        # A full bucket is the same as no bucket; drop those first, then the
        # least recently failed half (a flood from many addresses must not
        # grow memory without bound).
        for key in [k for k, b in self._buckets.items() if self._level(b, now) >= self.policy.burst]:
            del self._buckets[key]
        while len(self._buckets) > self.policy.max_clients // 2:
            self._buckets.popitem(last=False)

    def snapshot(self) -> Mapping[str, float]:
        """Current attempt levels by client (for tests and metrics)."""
        now = self._clock()
        with self._lock:
            return {k: self._level(b, now) for k, b in self._buckets.items()}
