"""Typed, path-reporting access to decoded JSON documents (internal).

Used by the statement parser so every malformed field is reported with its
path (``statement.predicate.runDetails...``) as a ProvenanceError.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from fromsource.errors import ProvenanceError

_HEX64 = re.compile(r"[0-9a-f]{64}")


class JsonReader:
    """Typed access to decoded JSON that reports the path of what is wrong."""

    def __init__(self, value: object, path: str) -> None:
        self.value = value
        self.path = path

    def _fail(self, expected: str) -> ProvenanceError:
        return ProvenanceError(
            f"attestation: {self.path} is missing or not {expected}; the statement is "
            "malformed, rebuild or re-fetch it",
            field=self.path,
        )

    def __getitem__(self, key: str) -> JsonReader:
        value = self.obj().get(key)
        return JsonReader(value, f"{self.path}.{key}")

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self._fail("an object")
        return cast(dict[str, Any], self.value)

    def items(self) -> list[JsonReader]:
        if not isinstance(self.value, list):
            raise self._fail("a list")
        return [JsonReader(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self._fail("a string")
        return self.value

    def integer(self) -> int:
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise self._fail("an integer")
        return self.value

    def sha256(self) -> str:
        value = self["sha256"].text()
        if not _HEX64.fullmatch(value):
            raise self._fail("a hex sha256 digest")
        return value

    def time(self) -> datetime:
        try:
            moment = datetime.fromisoformat(self.text())
        except ValueError as exc:
            raise self._fail("an RFC 3339 time") from exc
        if moment.tzinfo is None:
            raise self._fail("an RFC 3339 time with a zone")
        return moment
