"""The old import paths (`rendering`, `cameras`) re-export the very objects of the modules that now hold them."""

from __future__ import annotations

import importlib

import pytest

from pipelines.render import cameras, rendering


@pytest.mark.parametrize("facade", [cameras, rendering], ids=["cameras", "rendering"])
def test_facade_names_are_the_moved_objects(facade) -> None:
    assert len(facade.__all__) == len(set(facade.__all__))
    for name in facade.__all__:
        obj = getattr(facade, name)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("pipelines.render.") and home != facade.__name__:
            assert getattr(importlib.import_module(home), name) is obj, name
