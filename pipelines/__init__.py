"""The pipelines of 3D Deep Learning Studio: one module per capability, each a Config and a run() generator.

`REGISTRY` is the one list of pipelines: the CLI, the app and the contract tests all read it.
Keys are kebab-case; the module is the key with '-' replaced by '_'.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

# On a small shared CPU (2 cores, the Gradio server and other jobs beside the pipeline) OpenMP threads that spin
# while they wait make torch many times slower: a volume training step measured 5x slower with the other core
# busy. Sleeping waits cost little when the machine is idle. This must be set before torch is first imported,
# so every entry point (app, CLI, tests, bench) imports this package first; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REGISTRY: dict[str, str] = {
    "inspect": "Load a 3D file, check it against an independent reader, measure it and convert it.",
    "shading-fit": "Fit a light position or a mesh translation/scale to target renders of a heterogeneous mesh batch.",
    "shading-points": "The book's exercise: recover the translation (and rotation) between two point sets by SGD.",
    "shading-turntable": "Render a turntable of a mesh with the Shading lab's settings and export GIF and MP4.",
    "mesh-fit": "Deform an ico-sphere onto a point cloud or mesh: chamfer plus edge, normal and Laplacian regularisers.",
    "pose": "Recover a camera pose by differentiable rendering: soft silhouette and/or soft Phong losses, Adam.",
    "pose-track": "Track an object moving along a path: each frame's pose warm-starts from the last frame's estimate.",
    "volume": "Fit a voxel grid of densities and colours to multi-view renders with PyTorch3D's VolumeRenderer.",
    "nerf": "Train a neural radiance field (the book's MLP, or a fast grid field) on multi-view renders.",
    "smpl": "Shape and pose the SMPL-layout body (LBS); export the posed mesh, skeleton and skinning heat map.",
    "smplify": "SMPLify: fit SMPL pose, shape and camera translation to 2D keypoints (synthetic or OpenPose JSON).",
}


def module_name(name: str) -> str:
    return "pipelines." + name.replace("-", "_")


def get(name: str) -> ModuleType:
    """The pipeline module for a registry key (imported on first use: nothing heavy at import time)."""
    key = name.replace("_", "-")
    if key not in REGISTRY:
        raise KeyError(f"Unknown pipeline {name!r}. Known: {', '.join(sorted(REGISTRY))}.")
    return importlib.import_module(module_name(key))
