"""Shared camera test cases: image sizes, seeded random rotations, poses and point clouds, a square quad."""

from __future__ import annotations

import numpy as np

from pipelines.render.camera_spec import CameraSpec

SIZES = [(200, 300), (300, 200), (128, 128)]  # (H, W): landscape, portrait, square


def rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random rotation (3, 3) from a normalised quaternion, det +1."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def random_specs(seed: int, count: int = 4) -> list[CameraSpec]:
    """Seeded random poses looking roughly at the origin from 2.5-4 units, several kinds and sizes."""
    rng = np.random.default_rng(seed)
    specs = []
    for k in range(count):
        R = rotation(rng)
        T = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(2.5, 4.0)])
        size = SIZES[k % len(SIZES)]
        specs.append(CameraSpec(kind="fov-perspective", R=R, T=T, fov=float(rng.uniform(30, 90)), image_size=size))
        specs.append(
            CameraSpec(
                kind="perspective",
                R=R,
                T=T,
                fx=float(rng.uniform(1.0, 2.5)),
                fy=float(rng.uniform(1.0, 2.5)),
                px=float(rng.uniform(-0.2, 0.2)),
                py=float(rng.uniform(-0.2, 0.2)),
                image_size=size,
            )
        )
        specs.append(
            CameraSpec(
                kind="perspective",
                R=R,
                T=T,
                in_ndc=False,
                fx=float(rng.uniform(150, 300)),
                fy=float(rng.uniform(150, 300)),
                px=size[1] / 2 + float(rng.uniform(-20, 20)),
                py=size[0] / 2 + float(rng.uniform(-20, 20)),
                image_size=size,
            )
        )
    return specs


def cloud(seed: int, n: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, size=(n, 3))


def quad(half: float) -> tuple[np.ndarray, np.ndarray]:
    verts = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], dtype=np.float32)
    return verts, np.array([[0, 1, 2], [0, 2, 3]])
