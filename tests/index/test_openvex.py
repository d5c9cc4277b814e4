"""The OpenVEX feed needs what ``python-remediated`` needs: a pull token for it (README)."""

from __future__ import annotations

import httpx

from tests.conftest import IndexServer


def test_openvex_needs_a_pull_token_for_python_remediated(shared_index: IndexServer) -> None:
    paths = ["openvex/v1/all.json", "openvex/v1/pypi/demo-pkg.openvex.json"]
    python_only = shared_index.token("python")
    remediated = shared_index.token("python-remediated")
    for path in paths:
        url = shared_index.url + path
        refused = httpx.get(url, timeout=10)
        assert refused.status_code == 401 and "www-authenticate" in refused.headers
        assert httpx.get(url, auth=python_only, timeout=10).status_code == 403
        answered = httpx.get(url, auth=remediated, timeout=10)
        assert answered.status_code == 200
        assert answered.json()["@context"].startswith("https://openvex.dev/ns/")
