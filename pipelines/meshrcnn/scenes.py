"""Multi-object scenes for Mesh R-CNN's detection mode: several procedural objects standing on a floor, placed at
random without heavy overlap, seen by a camera that looks down at the floor; rendered with PyTorch3D with every
object's instance mask, box and category (the detector's ground truth).

World frame: +Y up, the floor is the plane y = 0. The camera looks at (0, LOOK_AT_Y, 0) from `distance`, at an
azimuth and an elevation of 30-60° (the same `object_to_camera` transform as the single-object images), so
`verts_cam = (verts_world - (0, LOOK_AT_Y, 0)) @ R.T + t` in the camera frame of `frame`.

Ids: a scene's objects are shapes `10 * scene_id + k`. Training scenes use ids below MAX_TRAIN_SCENES (shapes below
1,000,000, as the single-object training split); held-out scenes start at HELD_OUT_SCENES, so their shapes
(20,000,000 and up) are never drawn in training, by either model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pipelines.meshrcnn import data
from pipelines.meshrcnn.objects import CATEGORIES, Part, make_object, object_mesh, part_mesh

IMAGE_SIZE = 128
"""Scene image side in pixels (what the studio detector reads)."""
HELD_OUT_SCENES = 2_000_000
"""Held-out scenes are scene ids at and above this."""
MAX_TRAIN_SCENES = 100_000
LOOK_AT_Y = 0.25
"""Height of the point the camera looks at (objects stand on y = 0 and are up to about 1 tall)."""
PLACE_RADIUS = 1.0
"""Object centres fall in a disc of this radius on the floor."""
MIN_GAP = 0.9
"""Two objects' footprint circles may overlap by at most 10 % of the sum of their radii."""
MIN_PIXELS = 0.0015
"""An object whose visible mask covers less than this fraction of the image is not in the ground truth."""
FLOOR_HALF = 3.0


@dataclass(frozen=True)
class Placed:
    """One object on the floor: its shape, rotation about +Y (degrees), scale and floor position (x, z)."""

    shape_id: int
    category: str
    parts: tuple[Part, ...]
    yaw: float
    scale: float
    position: tuple[float, float]

    def world_mesh(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """verts_world (V, 3) standing on y = 0, faces (F, 3), colours (V, 3)."""
        verts, faces, colors = object_mesh(self.parts)
        return self.to_world(verts, lift=-float(verts[:, 1].min())), faces, colors

    def to_world(self, verts_obj: torch.Tensor, lift: float) -> torch.Tensor:
        a = math.radians(self.yaw)
        rot = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
        shift = torch.tensor([self.position[0], lift * self.scale, self.position[1]])
        return (verts_obj @ rot.T) * self.scale + shift


@dataclass(frozen=True)
class Scene:
    """A floor with objects, a camera view (azimuth, elevation, distance, light, background) and a floor colour."""

    scene_id: int
    objects: tuple[Placed, ...]
    view: data.View
    floor_color: tuple[float, float, float]

    def to_camera(self, verts_world: torch.Tensor) -> torch.Tensor:
        rot, t = data.object_to_camera(self.view)
        return (verts_world - torch.tensor([0.0, LOOK_AT_Y, 0.0])) @ rot.T + t

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole scene in the camera frame: verts (V, 3), faces (F, 3), colours (V, 3), and each face's owner
        (F,) int64: 0 the floor, k + 1 object k."""
        floor = Part("box", (0.0, -0.02, 0.0), (FLOOR_HALF, 0.02, FLOOR_HALF), self.floor_color)
        pieces = [(*part_mesh(floor), torch.tensor(floor.color).expand(8, 3))]
        pieces += [o.world_mesh() for o in self.objects]
        verts, faces, colors, owners, offset = [], [], [], [], 0
        for k, (v, f, c) in enumerate(pieces):
            verts.append(v)
            faces.append(f + offset)
            colors.append(c)
            owners.append(torch.full((len(f),), k, dtype=torch.int64))
            offset += len(v)
        return self.to_camera(torch.cat(verts)), torch.cat(faces), torch.cat(colors), torch.cat(owners)


def make_scene(scene_id: int, max_objects: int = 4, categories: tuple[str, ...] = CATEGORIES) -> Scene:
    """Scene `scene_id`: 1 to `max_objects` objects (none in about 1 of 20 scenes), each scaled to a half-diagonal
    of 0.3-0.5, turned at random and placed where its footprint does not overlap another's by much."""
    g = torch.Generator().manual_seed(15_485_863 * scene_id + 11)

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=g))

    n = 0 if u(0, 1) < 0.05 else 1 + int(torch.randint(max_objects, (), generator=g))
    placed: list[Placed] = []
    for k in range(n):
        category, parts = make_object(10 * scene_id + k, categories)
        scale = u(0.6, 1.0)
        verts = torch.cat([part_mesh(p)[0] for p in parts])
        radius = scale * float(verts[:, [0, 2]].norm(dim=1).max())
        for _ in range(30):
            r, a = PLACE_RADIUS * math.sqrt(u(0, 1)), u(0, 2 * math.pi)
            x, z = r * math.cos(a), r * math.sin(a)
            if all(math.dist((x, z), o.position) >= MIN_GAP * (radius + _footprint(o)) for o in placed):
                placed.append(Placed(10 * scene_id + k, category, parts, u(0, 360), scale, (x, z)))
                break
    light = torch.nn.functional.normalize(torch.tensor([u(-0.5, 0.5), u(0.5, 1.0), 0.8]), dim=0).tolist()
    view = data.View(u(0, 360), u(30, 60), u(2.6, 3.2), (light[0], light[1], light[2]), u(0.85, 1.0))
    h, s, v = u(0, 1), u(0.05, 0.3), u(0.45, 0.8)
    floor = _grey_tint(h, s, v)
    return Scene(scene_id, tuple(placed), view, floor)


def _footprint(o: Placed) -> float:
    verts = torch.cat([part_mesh(p)[0] for p in o.parts])
    return o.scale * float(verts[:, [0, 2]].norm(dim=1).max())


def _grey_tint(h: float, s: float, v: float) -> tuple[float, float, float]:
    """A muted floor colour: grey `v` pulled towards hue `h` by `s`."""
    rgb = [v * (1 - s + s * (0.5 + 0.5 * math.cos(2 * math.pi * (h - k / 3)))) for k in range(3)]
    return (rgb[0], rgb[1], rgb[2])


def render_scenes(scenes: list[Scene], image_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, S, S, 3) float in [0, 1] and instance maps (N, S, S) int64 (0: floor or background, k + 1: object
    k of the scene) of `scenes`."""
    meshes = [s.mesh() for s in scenes]
    images, pix_to_face = data.shade(
        [(m[0], m[1], m[2]) for m in meshes],
        [s.view.light for s in scenes],
        [s.view.background for s in scenes],
        image_size,
        device,
    )
    owners = torch.cat([m[3] for m in meshes]).to(device)  # (F_total,) packed like pix_to_face
    instances = torch.where(pix_to_face >= 0, owners[pix_to_face.clamp(min=0)], torch.zeros_like(pix_to_face))
    return images, instances


@dataclass
class Targets:
    """One image's ground truth: boxes (K, 4) float (x0, y0, x1, y1) in pixels with x1, y1 one past the last mask
    pixel, labels (K,) int64 (category index + 1; 0 is the background class), masks (K, S, S) bool."""

    boxes: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor


def targets(scene: Scene, instances: torch.Tensor) -> Targets:
    """The visible objects of `scene` from its instance map (S, S): objects hidden below MIN_PIXELS are left out."""
    s = instances.shape[-1]
    boxes, labels, masks = [], [], []
    for k, obj in enumerate(scene.objects):
        mask = instances == k + 1
        if float(mask.float().mean()) < MIN_PIXELS:
            continue
        ys, xs = torch.nonzero(mask, as_tuple=True)
        boxes.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float())
        labels.append(CATEGORIES.index(obj.category) + 1)
        masks.append(mask)
    if not boxes:
        return Targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), torch.zeros(0, s, s, dtype=torch.bool))
    return Targets(torch.stack(boxes).cpu(), torch.tensor(labels), torch.stack(masks).cpu())


@dataclass
class SceneSplit:
    """Rendered scenes: uint8 images (N, S, S, 3), uint8 instance maps (N, S, S), and the scenes."""

    images: torch.Tensor
    instances: torch.Tensor
    scenes: list[Scene]

    def __len__(self) -> int:
        return len(self.scenes)

    def targets(self, i: int) -> Targets:
        return targets(self.scenes[i], self.instances[i].long())


def build_scenes(
    first_id: int,
    n: int,
    *,
    image_size: int,
    max_objects: int = 4,
    device: torch.device = torch.device("cpu"),
    chunk: int = 16,
) -> Iterator[tuple[int, int]]:
    """Render scenes `first_id .. first_id + n - 1`, yielding (done, n) after each chunk; returns the SceneSplit
    (`split = yield from build_scenes(...)`)."""
    if first_id < HELD_OUT_SCENES and first_id + n > MAX_TRAIN_SCENES:
        raise ValueError(f"Training scenes must have ids below {MAX_TRAIN_SCENES:,}.")
    images, instances, scenes = [], [], []
    for start in range(0, n, chunk):
        batch = [make_scene(first_id + i, max_objects) for i in range(start, min(n, start + chunk))]
        rgb, inst = render_scenes(batch, image_size, device)
        images.append((rgb * 255 + 0.5).to(torch.uint8).cpu())
        instances.append(inst.to(torch.uint8).cpu())
        scenes.extend(batch)
        yield len(scenes), n
    return SceneSplit(torch.cat(images), torch.cat(instances), scenes)
