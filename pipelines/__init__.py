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
class Tab:
    """The app tab that shows a capability: its module `tabs.<key>`, its title, and the API endpoints it defines
    (api_name → what it does). The README's API table and the app tests read these."""

    key: str
    title: str
    apis: dict[str, str]


@dataclass(frozen=True)
class Entry:
    """One runnable pipeline: the module that holds its `Config` and `run`, a one-line summary, its tab, and the
    tab's endpoint that starts a recorded run of it."""

    module: str
    summary: str
    tab: Tab
    api: str


INSPECT = Tab(
    "inspect",
    "Inspect",
    {
        "inspect": "Load 3D file(s): summary, statistics, cross-check, header, viewer files, conversions.",
        "camera": "A camera on the loaded scene: frustum, render with projected points, coordinate table, conventions.",
        "batch": "The loaded meshes as a PyTorch3D batch: list, padded and packed views with index maps.",
    },
)
SHADING = Tab(
    "shading",
    "Shading lab",
    {
        "render": "Render a mesh with the chosen shader, lights, material, camera and raster settings.",
        "render_buffers": "The rasteriser's buffers and the ambient, diffuse and specular terms as images.",
        "render_compare": "Two settings side by side with a difference image.",
        "rotations": "Apply a rotation given in any representation; every conversion with round-trip errors.",
        "turntable": "A turntable of the mesh as MP4 and GIF.",
        "shading_fit": "Fit a light position or a mesh translation/scale to target renders of a mesh batch.",
        "shading_points": "The book's point-set exercise: recover a translation with chamfer distance and SGD.",
    },
)
MESH_FIT = Tab(
    "mesh_fit",
    "Mesh fitting",
    {
        "mesh_fit": "Deform an ico-sphere onto a target: fitted mesh, comparison, chamfer / normal / F1 metrics.",
        "mesh_fit_experiments": "The book's three experiments (no regulariser, edge only, all) side by side.",
    },
)
POSE = Tab(
    "pose",
    "Pose",
    {
        "pose": "Recover a camera pose by differentiable rendering: video, pose error in degrees and distance.",
        "pose_track": "Track an object along a path, warm-starting each frame: trajectory, per-frame errors, video.",
    },
)
VOLUME = Tab(
    "volume",
    "Volume",
    {
        "multiview": "Build the multi-view data set: views and silhouettes, cameras (and rays), data-set summary.",
        "volume": "Fit a voxel grid to the views: held-out PSNR, orbit video, marching-cubes mesh, density grid.",
    },
)
NERF = Tab(
    "nerf",
    "NeRF",
    {
        "nerf": "Train a NeRF on the views: held-out PSNR, orbit video, checkpoint, marching-cubes mesh.",
        "nerf_render": "Render a trained NeRF checkpoint from a new camera.",
    },
)
SMPL = Tab(
    "smpl",
    "SMPL",
    {
        "smpl": "Shape and pose the body model: posed mesh, skeleton, skinning heat map, exports (a recorded run).",
        "smpl_preview": "The same, instantly and without recording a run.",
        "smplify": "SMPLify: fit pose, shape and camera to 2D keypoints; stages, errors, fitted mesh.",
    },
)

SYNSIN = Tab(
    "synsin",
    "SynSin",
    {
        "synsin": "Move a camera through one picture: predicted depth, feature cloud, projected features, refined view, sweep GIF.",
        "synsin_train": "Train SynSin on procedural rooms: held-out PSNR/SSIM against copy and splat baselines, depth AbsRel.",
    },
)

MESHRCNN = Tab(
    "meshrcnn",
    "Mesh R-CNN",
    {
        "meshrcnn": "One picture or held-out sample to voxels, cubified and refined meshes, rendered over the image; OBJ/PLY/GLB.",
        "meshrcnn_train": "Train Mesh R-CNN (voxels, cubify, refinement) on procedural objects: held-out F1, voxel IoU, the ablation ladder.",
        "meshrcnn_detect_train": "Train the detection mode's Mask R-CNN on procedural floor scenes: losses, held-out box AP50, detector file.",
    },
)

GIRAFFE = Tab(
    "giraffe",
    "GIRAFFE",
    {
        "giraffe_generate": "Controllable generation: samples, one control as a still and a GIF sweep, the background alone, pose-fidelity and disentanglement measurements.",
        "giraffe_train": "Train GIRAFFE on procedural scenes: live EMA samples and both losses, resumable checkpoint, procedural FD, centroid error.",
        "giraffe_fid": "Fréchet distance of a model against fresh procedural scenes (Inception with the operator's verified weights, else the labelled procedural FD).",
    },
)

REGISTRY: dict[str, Entry] = {
    "inspect": Entry(
        "pipelines.inspect.pipeline",
        "Load a 3D file, check it against an independent reader, measure it and convert it.",
        INSPECT,
        "inspect",
    ),
    "shading-fit": Entry(
        "pipelines.shading.fit",
        "Fit a light position or a mesh translation/scale to target renders of a heterogeneous mesh batch.",
        SHADING,
        "shading_fit",
    ),
    "shading-points": Entry(
        "pipelines.shading.points",
        "The book's exercise: recover the translation (and rotation) between two point sets by SGD.",
        SHADING,
        "shading_points",
    ),
    "shading-turntable": Entry(
        "pipelines.shading.turntable",
        "Render a turntable of a mesh with the Shading lab's settings and export GIF and MP4.",
        SHADING,
        "turntable",
    ),
    "mesh-fit": Entry(
        "pipelines.mesh_fit.pipeline",
        "Deform an ico-sphere onto a point cloud or mesh: chamfer plus edge, normal and Laplacian regularisers.",
        MESH_FIT,
        "mesh_fit",
    ),
    "pose": Entry(
        "pipelines.pose.pipeline",
        "Recover a camera pose by differentiable rendering: soft silhouette and/or soft Phong losses, Adam.",
        POSE,
        "pose",
    ),
    "pose-track": Entry(
        "pipelines.pose.track",
        "Track an object moving along a path: each frame's pose warm-starts from the last frame's estimate.",
        POSE,
        "pose_track",
    ),
    "volume": Entry(
        "pipelines.volume.pipeline",
        "Fit a voxel grid of densities and colours to multi-view renders with PyTorch3D's VolumeRenderer.",
        VOLUME,
        "volume",
    ),
    "nerf": Entry(
        "pipelines.nerf.pipeline",
        "Train a neural radiance field (the book's MLP, or a fast grid field) on multi-view renders.",
        NERF,
        "nerf",
    ),
    "giraffe-generate": Entry(
        "pipelines.giraffe.generate",
        "GIRAFFE: controllable generation with the shipped, an official or an uploaded model, and its measurements.",
        GIRAFFE,
        "giraffe_generate",
    ),
    "giraffe-train": Entry(
        "pipelines.giraffe.pipeline",
        "Train GIRAFFE (NS-GAN + R1, RMSprop, EMA generator) on procedural scenes; procedural FD and pose fidelity.",
        GIRAFFE,
        "giraffe_train",
    ),
    "giraffe-fid": Entry(
        "pipelines.giraffe.fid",
        "Fréchet distance of a GIRAFFE model against fresh procedural scenes (Inception or the procedural encoder).",
        GIRAFFE,
        "giraffe_fid",
    ),
    "smpl": Entry(
        "pipelines.smpl.pipeline",
        "Shape and pose the SMPL-layout body (LBS); export the posed mesh, skeleton and skinning heat map.",
        SMPL,
        "smpl",
    ),
    "smplify": Entry(
        "pipelines.smpl.smplify",
        "SMPLify: fit SMPL pose, shape and camera translation to 2D keypoints (synthetic or OpenPose JSON).",
        SMPL,
        "smplify",
    ),
    "synsin": Entry(
        "pipelines.synsin.view",
        "SynSin: novel views of one picture (depth, feature cloud, projected features, refined view, sweep GIF).",
        SYNSIN,
        "synsin",
    ),
    "synsin-train": Entry(
        "pipelines.synsin.train",
        "Train SynSin on procedural rooms (L1 + perceptual + GAN + feature matching) and score it on held-out rooms.",
        SYNSIN,
        "synsin_train",
    ),
    "meshrcnn": Entry(
        "pipelines.meshrcnn.predict",
        "Mesh R-CNN on one image (shipped, official or uploaded weights): voxels, cubified and refined meshes.",
        MESHRCNN,
        "meshrcnn",
    ),
    "meshrcnn-train": Entry(
        "pipelines.meshrcnn.train",
        "Train Mesh R-CNN's ShapeNet-mode VoxMesh on procedural objects; F1, chamfer, voxel IoU and the ablation ladder.",
        MESHRCNN,
        "meshrcnn_train",
    ),
    "meshrcnn-detect-train": Entry(
        "pipelines.meshrcnn.detect_train",
        "Train Mesh R-CNN's detector (torchvision Mask R-CNN, small ResNet + FPN) on procedural floor scenes; box AP50.",
        MESHRCNN,
        "meshrcnn_detect_train",
    ),
}


def capability_tabs() -> list[Tab]:
    """The capabilities' tabs, once each, in registry order."""
    tabs: dict[str, Tab] = {}
    for entry in REGISTRY.values():
        tabs.setdefault(entry.tab.key, entry.tab)
    return list(tabs.values())


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
