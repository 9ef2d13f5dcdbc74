"""Config helpers and device resolution."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from pipelines.core.config import field_docs, override, to_jsonable
from pipelines.core.device import resolve_device


@dataclass(frozen=True)
class Demo:
    steps: int = 5
    """Optimisation steps."""
    lr: float = 0.1
    """Learning rate."""
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    """Image sizes."""
    out_dir: Path | None = None
    """Output folder."""


def test_field_docs_read_from_source():
    assert field_docs(Demo) == {
        "steps": "Optimisation steps.",
        "lr": "Learning rate.",
        "sizes": "Image sizes.",
        "out_dir": "Output folder.",
    }


def test_override_parses_text_and_checks_names():
    cfg = override(Demo(), {"steps": "7", "lr": "0.5", "flag": "yes", "sizes": "3,4", "out-dir": "x"})
    assert cfg == Demo(steps=7, lr=0.5, flag=True, sizes=(3, 4), out_dir=Path("x"))
    assert override(Demo(), {"out_dir": "none"}).out_dir is None
    with pytest.raises(ValueError, match="Unknown setting"):
        override(Demo(), {"stepz": 1})
    with pytest.raises(ValueError, match="expects a number"):
        override(Demo(), {"steps": "ten"})
    with pytest.raises(ValueError, match="true/false"):
        override(Demo(), {"flag": "maybe"})
    assert to_jsonable(cfg)["out_dir"] == "x"


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
