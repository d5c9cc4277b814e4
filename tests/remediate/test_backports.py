"""Our backports, by behaviour: each vulnerability shows on the upstream sdist and not after
our series is applied.

The sdist comes from the configured upstream index; the library runs from the
unpacked tree (``PYTHONPATH``) in a fresh venv holding dependencies of its
era, so the test does not depend on the build pipeline.  (The end-to-end
test in ``test_remediate_pipeline.py`` runs the same checks against the
built ``+fs.N`` wheel.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.build.unpack import unpack_sdist
from fromsource.build.upstream import Upstream
from fromsource.config import Settings, upstream_url
from fromsource.remediate.plan import plan_remediation
from fromsource.remediate.series import find_series
from tests.remediate.probes import (
    CASES,
    FLASK_PROBE,
    JINJA2_PROBE,
    REQUESTS_PROBE,
    URLLIB3_PROBE,
    WERKZEUG_PROBE,
    Case,
    make_venv,
    probe,
)

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    cache = tmp_path_factory.mktemp("upstream-cache")
    with Upstream(upstream_url(Settings()), cache_dir=cache) as index:
        yield index


@dataclass(frozen=True)
class Trees:
    """The upstream sdist unpacked twice: as is, and with our series applied."""

    python: Path
    upstream: Path
    patched: Path


def prepare(case: Case, upstream: Upstream, base: Path) -> Trees:
    """Fetch the sdist, unpack it twice, apply our series to one copy, make the venv."""
    series = find_series(case.project, case.version)
    assert series is not None, f"no shipped series for {case.project} {case.version}"
    sdist = upstream.download(upstream.find_sdist(case.project, case.version), base / "sdist")
    plain = unpack_sdist(sdist, base / "upstream").root
    patched = unpack_sdist(sdist, base / "patched").root
    plan_remediation(series, []).apply(patched)
    return Trees(make_venv(base, case.deps), plain, patched)


@pytest.fixture(scope="module")
def trees(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trees]:
    return {name: prepare(case, upstream, tmp_path_factory.mktemp(name))
            for name, case in CASES.items()}


def test_flask_vary_cookie_on_refreshed_session(trees: dict[str, Trees]) -> None:
    t = trees["flask"]
    before = probe(t.python, t.upstream, FLASK_PROBE)
    after = probe(t.python, t.patched, FLASK_PROBE)
    assert before == {"set_cookie": True, "vary": None}
    assert after == {"set_cookie": True, "vary": "Cookie"}


def test_werkzeug_nameless_cookie_cannot_shadow(trees: dict[str, Trees]) -> None:
    t = trees["werkzeug"]
    assert probe(t.python, t.upstream, WERKZEUG_PROBE) == {"values": ["bad", "good"],
                                                           "get": "bad"}
    assert probe(t.python, t.patched, WERKZEUG_PROBE) == {"values": ["good"], "get": "good"}


def test_requests_no_proxy_credentials_to_https_origin(trees: dict[str, Trees]) -> None:
    t = trees["requests"]
    assert probe(t.python, t.upstream, REQUESTS_PROBE) == {"http": True, "https": True}
    assert probe(t.python, t.patched, REQUESTS_PROBE) == {"http": True, "https": False}


def test_urllib3_cookie_dropped_on_cross_origin_redirect(trees: dict[str, Trees]) -> None:
    t = trees["urllib3"]
    assert probe(t.python, t.upstream, URLLIB3_PROBE) == {"cookie": True,
                                                          "authorization": False}
    assert probe(t.python, t.patched, URLLIB3_PROBE) == {"cookie": False,
                                                         "authorization": False}


def test_jinja2_xmlattr_refuses_attribute_injection(trees: dict[str, Trees]) -> None:
    t = trees["jinja2"]
    before = probe(t.python, t.upstream, JINJA2_PROBE)
    assert before["space"] == '<p onclick=alert(1) x="v">'
    assert before["slash"] == '<p x/onclick=alert(1)="v">'
    assert str(before["gt"]).startswith("<p x&gt;")  # escaped: '>' alone was never live
    after = probe(t.python, t.patched, JINJA2_PROBE)
    assert all(str(v).startswith("ValueError: Invalid character in attribute name")
               for v in after.values()), after
