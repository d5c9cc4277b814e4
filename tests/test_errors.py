"""Every exception fromsource defines belongs to the one tree in fromsource.errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fromsource
from fromsource import errors
from fromsource.errors import FromsourceError, RefusedMemberError


def _exception_classes() -> dict[str, type[BaseException]]:
    """``module.Class`` for every exception class defined at the top of a module of src/."""
    found: dict[str, type[BaseException]] = {}
    modules = [m.name for m in pkgutil.walk_packages(fromsource.__path__, "fromsource.")]
    assert len(modules) > 50  # the walk saw the package, not an empty path
    for name in modules:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{name}.{attr}"] = value
    return found


def test_every_exception_class_derives_from_fromsource_error() -> None:
    classes = _exception_classes()
    assert "fromsource.errors.HookError" in classes  # the walk reaches errors.py
    outside = [name for name, cls in classes.items() if not issubclass(cls, FromsourceError)]
    assert outside == [], "derive these from a branch of fromsource.errors"


def test_public_exception_classes_are_defined_in_errors_py() -> None:
    # A private helper (``_Retry``, a transient status that never leaves its module)
    # may live beside its only user; anything a caller can catch lives in errors.py.
    elsewhere = [
        name
        for name, cls in _exception_classes().items()
        if cls.__module__ != errors.__name__ and not cls.__name__.startswith("_")
    ]
    assert elsewhere == [], "move these into fromsource/errors.py"


def test_errors_keep_their_facts_for_json() -> None:
    refused = RefusedMemberError("../x", "has a '..' component that escapes the archive root")
    assert refused.member == "../x" and refused.reason.startswith("has a '..'")
    assert refused.to_json() == {
        "error": "RefusedMemberError",
        "message": "member '../x' has a '..' component that escapes the archive root; "
        "the sdist is refused",
        "member": "../x",
        "reason": "has a '..' component that escapes the archive root",
    }
    whole = RefusedMemberError(None, "cannot be read as a tar or zip archive (truncated)")
    assert whole.message.startswith("the archive cannot be read") and whole.member is None
