"""Each package's ``__all__`` lists names that exist, and every public name it defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import atlasd


def _modules() -> list[ModuleType]:
    names = ["atlasd"] + [
        info.name
        for info in pkgutil.walk_packages(atlasd.__path__, prefix="atlasd.")
        if not info.name.endswith("__main__")  # running it is its only job
    ]
    return [importlib.import_module(name) for name in sorted(names)]


MODULES = [module for module in _modules() if hasattr(module, "__all__")]


def test_every_package_declares_its_public_names() -> None:
    """The packages that form the API say what is public."""
    declared = {module.__name__ for module in MODULES}
    packages = ("atlasd", "atlasd.client", "atlasd.events", "atlasd.eventlog", "atlasd.errors")
    for package in (*packages, "atlasd.wire", "atlasd.dashboard", "atlasd.packs"):
        assert package in declared


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_names_exist(module: ModuleType) -> None:
    """Nothing in ``__all__`` is a typo or a leftover."""
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_lists_every_public_class_and_function_defined_here(module: ModuleType) -> None:
    """A public class or function defined in a module is either in ``__all__`` or underscored."""
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module.__name__
    }
    unlisted = sorted(defined - set(module.__all__))
    assert unlisted == []
