"""Hostile and broken checkpoints become one sentence and nothing in them runs."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from pipelines.giraffe import checkpoints


class _Payload:
    """A pickle whose loading would create a file (through os.system) if it were ever executed."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_pickle_that_carries_code_is_refused_without_running(tmp_path):
    target = tmp_path / "touched"
    path = tmp_path / "checkpoint_compcars64-e85060a0.pt"
    torch.save({"model": _Payload(str(target))}, path)
    with pytest.raises(checkpoints.CheckpointError, match="nothing in it was run"):
        checkpoints.load_any(path)
    assert not target.exists()
    raw = tmp_path / "raw.pt"  # a plain pickle (not a torch zip) with the same payload
    raw.write_bytes(pickle.dumps(_Payload(str(target))))
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load_any(raw)
    assert not target.exists()


def test_truncated_corrupt_and_foreign_files_get_a_sentence(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"generator.decoder.feat_out.weight": torch.zeros(128, 128)}}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(checkpoints.CheckpointError, match="truncated or corrupt"):
        checkpoints.load_any(truncated)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(checkpoints.CheckpointError):
        checkpoints.load_any(noise)
    with pytest.raises(checkpoints.CheckpointError, match="missing"):
        checkpoints.load_any(good)  # one tensor of the official layout: the rest is missing
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(checkpoints.CheckpointError, match="no 'model'"):
        checkpoints.load_any(other)
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint file"):
        checkpoints.load_any(tmp_path / "absent.pt")
