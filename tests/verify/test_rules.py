"""Installer rules, shebang normalization and where wheel members are installed."""

from __future__ import annotations

import hashlib

from fromsource.verify.model import InstalledFile
from fromsource.verify.rules import attested_location, installer_rule, shebang_variants


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_installer_rules() -> None:
    info = "demo-1.0.dist-info"
    scripts = frozenset({"demo"})
    assert installer_rule(f"{info}/INSTALLER", info, scripts) == "installer metadata"
    assert installer_rule(f"{info}/RECORD", info, scripts) == "installer metadata"
    assert installer_rule(f"{info}/direct_url.json", info, scripts) == "installer metadata"
    assert installer_rule(f"{info}/uv_cache.json", info, scripts) == "installer metadata"
    assert installer_rule("demo/__pycache__/x.cpython-311.pyc", info, scripts) == "bytecode"
    assert installer_rule("../../../bin/demo", info, scripts) == "script launcher"
    assert installer_rule("../../Scripts/demo.exe", info, scripts) == "script launcher"
    # Not installer files: a module, a script not named in entry points, a nested INSTALLER.
    assert installer_rule("demo/cli.py", info, scripts) is None
    assert installer_rule("../../../bin/other", info, scripts) is None
    assert installer_rule("demo/INSTALLER", info, scripts) is None
    assert installer_rule("bin/demo", info, scripts) is None


def test_shebang_variants_undo_pip_and_trampoline_rewrites() -> None:
    original = b"#!python\nprint('hi')\n"
    rewritten = b"#!/tmp/venv/bin/python\nprint('hi')\n"
    assert sha(original) in shebang_variants(rewritten)
    trampoline = b"#!/bin/sh\n'''exec' '/a b/python' \"$0\" \"$@\"\n' '''\nprint('hi')\n"
    assert sha(original) in shebang_variants(trampoline)
    crlf = b"#!/v/python\r\nprint('hi')\r\n"
    assert sha(b"#!python\r\nprint('hi')\r\n") in shebang_variants(crlf)
    assert shebang_variants(b"print('no shebang')\n") == frozenset()


def test_attested_location_maps_data_schemes() -> None:
    installed = {
        "demo/__init__.py": None,
        "../../../bin/tool": None,
        "../../../share/demo/x.txt": None,
        "lib.py": None,
    }
    files = {p: InstalledFile(p, None, None) for p in installed}
    assert attested_location("demo/__init__.py", files) == "demo/__init__.py"
    assert attested_location("demo-1.0.data/scripts/tool", files) == "../../../bin/tool"
    assert attested_location("demo-1.0.data/data/share/demo/x.txt", files) == "../../../share/demo/x.txt"
    assert attested_location("demo-1.0.data/purelib/lib.py", files) == "lib.py"
    assert attested_location("demo/missing.py", files) is None
