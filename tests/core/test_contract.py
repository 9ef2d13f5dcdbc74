"""The pipeline contract, over every registered pipeline: tiny preset, events, files, clean stop."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import pipelines
from pipelines.core.config import PRESETS, field_docs, make_preset
from pipelines.core.events import Done, Preview, Progress
from pipelines.core.runner import Run
from pipelines.core.runs import RunStore

NAMES = sorted(pipelines.REGISTRY)


@pytest.mark.parametrize("name", NAMES)
def test_config_shape(name):
    module = pipelines.get(name)
    cfg_cls = module.Config
    assert dataclasses.is_dataclass(cfg_cls)
    for preset in PRESETS:
        cfg = make_preset(cfg_cls, preset)
        assert isinstance(cfg, cfg_cls)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.seed = 1  # configs are frozen
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    assert {"device", "seed", "out_dir"} <= fields
    docs = field_docs(cfg_cls)
    undocumented = fields - set(docs)
    assert not undocumented, f"fields without a doc string: {undocumented}"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_run_contract(name, device, tmp_path):
    """Over the devices present: CPU always, CUDA when there is one."""
    module = pipelines.get(name)
    cfg = dataclasses.replace(module.Config.tiny(), out_dir=tmp_path / "out", device=str(device))
    events = list(module.run(cfg))
    done = [e for e in events if isinstance(e, Done)]
    assert len(done) == 1 and isinstance(events[-1], Done)
    for e in events:
        assert isinstance(e, (Progress, Preview, Done))
        if isinstance(e, Progress):
            assert 0 <= e.step <= e.total
            assert all(math.isfinite(v) for v in e.losses.values())
        if isinstance(e, Preview) and e.image is not None:
            assert e.image.dtype == np.uint8 and e.image.ndim == 3 and e.image.shape[2] == 3
    for key, value in done[0].metrics.items():
        assert math.isfinite(value), key
    for path in done[0].files.values():
        assert path.exists() and path.stat().st_size > 0
        assert (tmp_path / "out") in path.parents, "pipelines write only under cfg.out_dir"


@pytest.mark.parametrize("name", NAMES)
def test_close_mid_run_is_recorded_as_stopped(name, tmp_path):
    store = RunStore(tmp_path / "data")
    module = pipelines.get(name)
    run = Run(
        name,
        module.run,
        dataclasses.replace(module.Config.tiny(), device="cpu"),
        store,
        tmp_path / "runs",
        preset="tiny",
    )
    events = iter(run)
    first = next(events)
    assert isinstance(first, (Progress, Preview))
    events.close()
    record = store.get(run.id)
    assert record.status == "stopped"
    assert record.ended_at is not None
