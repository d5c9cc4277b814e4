"""Fixtures of the CLI tests: the lock-build world (tests/cli/lock_world.py)."""

from tests.cli.lock_world import world  # noqa: F401
from tests.packages import local_index  # noqa: F401
