"""Pose tracking: a smooth path stays within the error bound, with its table, CSV and figure."""

from __future__ import annotations

import dataclasses

from pipelines.core.events import Done
from pipelines.pose import track as pose_track


def _done(events) -> Done:
    events = list(events)
    assert isinstance(events[-1], Done)
    return events[-1]


def test_tracking_stays_within_bound_on_a_smooth_path(tmp_path):
    cfg = dataclasses.replace(pose_track.Config.tiny(), out_dir=tmp_path, device="cpu")
    done = _done(pose_track.run(cfg))
    m = done.metrics
    assert m["frames_within_bound"] == 1.0 and m["max_error_deg"] <= cfg.bound_deg, done.info["table"]
    assert len(done.info["table"]) == cfg.frames
    assert done.files["trajectory"].read_text().count("\n") == cfg.frames + 1
    assert done.info["figure"] is not None
