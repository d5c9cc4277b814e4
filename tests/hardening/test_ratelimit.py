"""The failed-sign-in budget (index/ratelimit.py): pure behaviour with a fake clock."""

from __future__ import annotations

import pytest

from fromsource.index.ratelimit import FailureBudget, FailurePolicy, client_key, client_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_attempt_per_refill() -> None:
    clock = Clock()
    budget = FailureBudget(FailurePolicy(burst=3, per_minute=6), clock)  # one every 10 s
    for _ in range(3):
        assert budget.retry_after("1.2.3.4") == 0
        budget.failed("1.2.3.4")
    assert budget.retry_after("1.2.3.4") == 10
    assert budget.retry_after("5.6.7.8") == 0  # other clients are not affected
    clock.now += 4
    assert budget.retry_after("1.2.3.4") == 6
    clock.now += 6
    assert budget.retry_after("1.2.3.4") == 0
    budget.failed("1.2.3.4")
    assert budget.retry_after("1.2.3.4") == 10
    clock.now += 3600
    assert budget.snapshot()["1.2.3.4"] == 3.0  # refilled, never above the burst


def test_off_when_the_setting_is_zero() -> None:
    budget = FailureBudget(FailurePolicy.from_setting(0))
    for _ in range(100):
        budget.failed("1.2.3.4")
    assert budget.retry_after("1.2.3.4") == 0 and not budget.policy.enabled


def test_memory_stays_bounded_under_a_flood_of_addresses() -> None:
    clock = Clock()
    budget = FailureBudget(FailurePolicy(burst=2, per_minute=2, max_clients=100), clock)
    for n in range(10_000):
        budget.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(budget.snapshot()) <= 100
    budget.failed("9.9.9.9")
    budget.failed("9.9.9.9")
    assert budget.retry_after("9.9.9.9") > 0  # the newest offender is still remembered


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("not an address", "not an address"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_client_keys(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_client_of_a_scope() -> None:
    assert client_of({"client": ("203.0.113.9", 5555)}) == "203.0.113.9"
    assert client_of({"client": None}) == "unknown"
    assert client_of({}) == "unknown"
