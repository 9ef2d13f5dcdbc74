"""The book's figures: every declaration names a real pipeline, settings its Config has and a file it writes; the
cheap ones are made end to end at the tiny preset; the CLI reproduces one by number."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

import pipelines
from pipelines.__main__ import main as cli_main
from pipelines.core.events import Done
from pipelines.render.book_figures import (
    BookFigure,
    book_camera_rotations,
    book_camera_specs,
    book_cameras,
    book_cube,
    figure_index,
)
from pipelines.render.camera_spec import build_camera

ROOT = Path(__file__).resolve().parents[2]


def all_figures() -> list[BookFigure]:
    return [fig for name in pipelines.REGISTRY for fig in getattr(pipelines.get(name), "FIGURES", ())]


def test_each_chapters_figures_are_declared_once():
    numbers = [fig.number for fig in all_figures()]
    assert len(numbers) == len(set(numbers))
    for wanted in ("2.5", "2.6", "2.7", "2.8", "2.9", "2.10", "5.2", "6.3", "6.4"):
        assert wanted in numbers
    with pytest.raises(ValueError, match="twice"):
        figure_index((all_figures()[0], all_figures()[0]))


@pytest.mark.parametrize("fig", all_figures(), ids=lambda f: f.number)
def test_declarations_fit_their_pipeline(fig):
    module = pipelines.get(fig.pipeline)
    assert fig in module.FIGURES and fig.title and len(fig.book) > 60
    cfg = fig.config(module.Config.tiny())
    for name, value in fig.settings.items():
        assert getattr(cfg, name) == value


@pytest.mark.parametrize("number", ["2.8", "5.2", "6.3", "6.4"])
def test_cheap_figures_are_made_at_the_tiny_preset(number, tmp_path):
    fig = next(f for f in all_figures() if f.number == number)
    module = pipelines.get(fig.pipeline)
    cfg = dataclasses.replace(fig.config(module.Config.tiny()), out_dir=tmp_path, device="cpu")
    if hasattr(cfg, "eval_every"):  # the figure, not the fit, is under test: a few steps
        cfg = dataclasses.replace(cfg, steps=4)
    done = list(module.run(cfg))[-1]
    assert isinstance(done, Done)
    with Image.open(done.files[fig.output]) as picture:
        width, height = picture.size
    if number == "5.2":  # 4 rows of 7 views
        assert width > 1.5 * height
    if number == "6.4":  # 3 rows of 5 views
        assert width > 1.4 * height


def test_the_cli_reproduces_a_figure_by_number(tmp_path):
    args = [sys.executable, "-m", "pipelines", "shading-turntable", "--figure", "2.6", "--preset", "tiny"]
    args += ["--device", "cpu", "--no-record", "--data-dir", str(tmp_path)]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("figure 2.6"))
    assert Path(line.rsplit(": ", 1)[1]).is_file()


def test_an_unknown_figure_is_refused_with_the_known_ones(capsys):
    assert cli_main(["shading-turntable", "--figure", "9.9", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no figure '9.9'" in err and "2.10" in err


def test_chapter_1_cameras_are_the_books_batch():
    """Eight PerspectiveCameras in pixel units with the book's Euler rotations (scipy's extrinsic 'zyx' of
    (5n, n, n) degrees), and the inspector's eight specs map the cube's vertices to the same screen positions."""
    R, T = book_camera_rotations()
    n = np.arange(-4, 4)
    expected = Rotation.from_euler("zyx", np.stack([5 * n, n, n], -1), degrees=True).as_matrix()
    assert np.abs(R.numpy() - expected).max() < 1e-12 and T[:, 0].tolist() == list(range(-4, 4))
    cams = book_cameras()
    assert len(cams) == 8 and not cams.in_ndc()
    verts = torch.tensor(book_cube()[0], dtype=torch.float32)
    screen = cams.transform_points_screen(verts[None].expand(8, -1, -1))  # (8, 8, 3)
    for i, spec in enumerate(book_camera_specs()):
        one = build_camera(spec).transform_points_screen(verts[None])[0]
        assert torch.allclose(one[:, :2], screen[i, :, :2], rtol=1e-4, atol=1e-2)
