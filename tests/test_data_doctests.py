"""The examples in the docstrings of ``zoo.data`` run and give what they say."""

import doctest
import importlib
import pkgutil

import pytest
from test_data_support import data_dir  # noqa: F401  (fixture)

import zoo.data

MODULES = sorted(info.name for info in pkgutil.iter_modules(zoo.data.__path__, prefix="zoo.data."))


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name, data_dir):  # noqa: F811
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
