"""The short examples in the docstrings run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import qpiset

MODULES = sorted(m.name for m in pkgutil.walk_packages(qpiset.__path__, "qpiset."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
