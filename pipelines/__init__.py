"""The pipelines of 3D Deep Learning Studio, in layers: capability packages → train → render → files → core.

`REGISTRY` is the one list of runnable pipelines: the CLI, the app's tabs, Health, the API table and the contract
tests all read it. Keys are kebab-case; each entry names the module that holds its `Config` and `run`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType

# On a small shared CPU (2 cores, the Gradio server and other jobs beside the pipeline) OpenMP threads that spin
# while they wait make torch many times slower: a volume training step measured 5x slower with the other core
# busy. Sleeping waits cost little when the machine is idle. This must be set before torch is first imported,
# so every entry point (app, CLI, tests, bench) imports this package first; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(frozen=True)
class Entry:
    """One runnable pipeline: the module that holds its `Config` and `run`, and a one-line summary."""

    module: str
    summary: str


REGISTRY: dict[str, Entry] = {
    "inspect": Entry(
        "pipelines.inspect.pipeline",
        "Load a 3D file, check it against an independent reader, measure it and convert it.",
    ),
    "shading-fit": Entry(
        "pipelines.shading.fit",
        "Fit a light position or a mesh translation/scale to target renders of a heterogeneous mesh batch.",
    ),
    "shading-points": Entry(
        "pipelines.shading.points",
        "The book's exercise: recover the translation (and rotation) between two point sets by SGD.",
    ),
    "shading-turntable": Entry(
        "pipelines.shading.turntable",
        "Render a turntable of a mesh with the Shading lab's settings and export GIF and MP4.",
    ),
    "mesh-fit": Entry(
        "pipelines.mesh_fit.pipeline",
        "Deform an ico-sphere onto a point cloud or mesh: chamfer plus edge, normal and Laplacian regularisers.",
    ),
    "pose": Entry(
        "pipelines.pose.pipeline",
        "Recover a camera pose by differentiable rendering: soft silhouette and/or soft Phong losses, Adam.",
    ),
    "pose-track": Entry(
        "pipelines.pose.track",
        "Track an object moving along a path: each frame's pose warm-starts from the last frame's estimate.",
    ),
    "volume": Entry(
        "pipelines.volume.pipeline",
        "Fit a voxel grid of densities and colours to multi-view renders with PyTorch3D's VolumeRenderer.",
    ),
    "nerf": Entry(
        "pipelines.nerf.pipeline",
        "Train a neural radiance field (the book's MLP, or a fast grid field) on multi-view renders.",
    ),
    "smpl": Entry(
        "pipelines.smpl.pipeline",
        "Shape and pose the SMPL-layout body (LBS); export the posed mesh, skeleton and skinning heat map.",
    ),
    "smplify": Entry(
        "pipelines.smpl.smplify",
        "SMPLify: fit SMPL pose, shape and camera translation to 2D keypoints (synthetic or OpenPose JSON).",
    ),
}


def module_name(name: str) -> str:
    """The module path of a registry key (`mesh-fit` or `mesh_fit`)."""
    return REGISTRY[_key(name)].module


def _key(name: str) -> str:
    key = name.replace("_", "-")
    if key not in REGISTRY:
        raise KeyError(f"Unknown pipeline {name!r}. Known: {', '.join(sorted(REGISTRY))}.")
    return key


def get(name: str) -> ModuleType:
    """The pipeline module for a registry key (imported on first use: nothing heavy at import time)."""
    return importlib.import_module(module_name(name))
