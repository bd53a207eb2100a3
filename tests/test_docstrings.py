"""The short examples in the docstrings run and print what they say.

Only modules that have examples are collected, and each must run at least one (a module
whose examples all vanished fails instead of passing with nothing tested). Modules that
need torch skip with their reason where it is not installed.
"""

import doctest
import importlib
import pkgutil

import pytest

import qpiset
from helpers import have_torch

#: Modules that import torch (the extra 'ml').
TORCH_MODULES = ("qpiset.inverse.learned", "qpiset.workflows.train_")


def _needs_torch(name: str) -> bool:
    return name.startswith(TORCH_MODULES)


def _modules_with_examples():
    out = []
    for info in pkgutil.walk_packages(qpiset.__path__, "qpiset."):
        name = info.name
        marks = [pytest.mark.torch] if _needs_torch(name) else []
        if _needs_torch(name) and not have_torch():
            out.append(pytest.param(name, marks=marks, id=name))  # skipped by the marker
            continue
        module = importlib.import_module(name)
        tests = doctest.DocTestFinder().find(module)
        if any(t.examples for t in tests):
            out.append(pytest.param(name, marks=marks, id=name))
    return sorted(out, key=lambda p: p.values[0])


MODULES = _modules_with_examples()


def test_most_public_modules_have_examples():
    assert len(MODULES) >= 40, f"only {len(MODULES)} modules have docstring examples"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples left"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
