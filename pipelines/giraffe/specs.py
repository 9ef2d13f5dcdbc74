"""Named generator specs: the studio's procedural-scene models (tiny, quick, ship) and the official configurations
that the 11 published checkpoints were trained with (autonomousvision/giraffe, configs/64res and configs/256res).

Official facts carried over (values, not code): every model has 256-d object codes, 128-d background codes, an
object field 128 x 8 with a skip at 4, a background field 64 x 4 (points / 12), 64 samples per ray between depth
0.5 and 6, a 16 px feature image, camera radius 2.732; 64 px models use 128 features, 256 px models 256.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pipelines.giraffe import camera
from pipelines.giraffe.boxes import BoxPrior
from pipelines.giraffe.fields import FieldSpec
from pipelines.giraffe.generator import GeneratorSpec

# --- the procedural scenes the studio trains on -------------------------------------------------------------------

STUDIO_BOXES = BoxPrior(
    n_boxes=3,
    min_objects=1,
    scale_min=(0.14, 0.14, 0.14),
    scale_max=(0.26, 0.26, 0.26),
    translation_min=(-0.4, -0.4, 0.0),
    translation_max=(0.4, 0.4, 0.0),
    rotation_range=(0.0, 1.0),
    on_plane=True,
    no_overlap=True,
)
STUDIO_ELEVATION = (20.0, 40.0)
"""Camera elevation range of the procedural scenes, degrees above the ground plane."""


def studio_spec(
    image_size: int = 32,
    feature_res: int = 8,
    n_samples: int = 32,
    hidden: int = 64,
    n_blocks: int = 4,
    z_dim: int = 64,
    feat_dim: int = 32,
    n_boxes: int = 3,
    min_feat: int = 16,
) -> GeneratorSpec:
    """A narrow generator for the procedural scenes (fov 30, elevation 20-40 degrees, depth 1.4-5.4)."""
    v = (camera.elevation_to_v(STUDIO_ELEVATION[0]), camera.elevation_to_v(STUDIO_ELEVATION[1]))
    return GeneratorSpec(
        image_size=image_size,
        feature_res=feature_res,
        n_samples=n_samples,
        depth_range=(1.4, 5.4),
        fov=30.0,
        range_v=v,
        object_field=FieldSpec(
            hidden=hidden,
            n_blocks=n_blocks,
            skips=(n_blocks // 2,),
            n_freq=6,
            n_freq_views=2,
            z_dim=z_dim,
            feat_dim=feat_dim,
            downscale=2.0,
        ),  # fmt: skip
        background_field=FieldSpec(
            hidden=max(16, hidden // 2),
            n_blocks=2,
            skips=(),
            n_freq=4,
            n_freq_views=2,
            z_dim=max(8, z_dim // 2),
            feat_dim=feat_dim,
            downscale=12.0,
        ),  # fmt: skip
        n_feat=feat_dim,
        min_feat=min_feat,
        boxes=dataclasses.replace(STUDIO_BOXES, n_boxes=n_boxes),
        pixel_centers=True,
    )


# --- the official configurations ----------------------------------------------------------------------------------

OFFICIAL_FILES: dict[str, str] = {
    "checkpoint_compcars64-e85060a0.pt": "cars64",
    "checkpoint_cats64-ff00b26f.pt": "cats64",
    "checkpoint_celeba64-dbe11f3e.pt": "celeba64",
    "checkpoint_chairs64-114befac.pt": "chairs64",
    "checkpoint_church64-03c09878.pt": "church64",
    "checkpoint_cars256-d9ea5e11.pt": "cars256",
    "checkpoint_celebahq256-d5b11030.pt": "celebahq256",
    "checkpoint_church256-ebd63480.pt": "church256",
    "checkpoint_clevr2256-96bd7074.pt": "clevr2_256",
    "checkpoint_clevr2345256-aa03cd59.pt": "clevr2345_256",
    "checkpoint_ffhq256-fa488759.pt": "ffhq256",
}
"""The published checkpoints (the `*_pretrained.yaml` files) and the built-in configuration each one needs."""

_CARS = {
    "boxes": BoxPrior(
        scale_min=(0.2, 0.16, 0.16),
        scale_max=(0.25, 0.2, 0.2),
        translation_min=(-0.22, -0.12, 0.0),
        translation_max=(0.22, 0.12, 0.0),
    ),  # fmt: skip
    "range_v": (0.41667, 0.5),
    "fov": 10.0,
}
_CLEVR = {
    "boxes": BoxPrior(
        scale_min=(0.17,) * 3,
        scale_max=(0.17,) * 3,
        translation_min=(-0.713, -0.713, 0.1665),
        translation_max=(0.713, 0.713, 0.1665),
        rotation_range=(0.0, 0.0),
    ),  # fmt: skip
    "range_v": (0.33333, 0.33333),
}
_OFFICIAL_SCENES: dict[str, dict[str, Any]] = {
    "cars64": _CARS,
    "cars256": _CARS,
    "clevr2_256": {**_CLEVR, "boxes": dataclasses.replace(_CLEVR["boxes"], n_boxes=2, min_objects=2)},
    "clevr2345_256": {**_CLEVR, "boxes": dataclasses.replace(_CLEVR["boxes"], n_boxes=5, min_objects=2)},
}
"""Scene settings known from the repository's configs; the others keep the official defaults (one box of half
size 0.5, translation +-0.75, elevation v = 0.25, fov 49.13), which only changes how random scenes are drawn, never
whether the weights load."""


def official_spec(name: str) -> GeneratorSpec:
    """The generator spec of an official configuration (`cars64`, `clevr2_256`, ...)."""
    if name not in set(OFFICIAL_FILES.values()):
        raise ValueError(
            f"Unknown official configuration {name!r}: choose one of {', '.join(OFFICIAL_FILES.values())}."
        )
    size = 256 if name.endswith("256") else 64
    feat = 256 if size == 256 else 128
    base = GeneratorSpec(
        image_size=size,
        object_field=FieldSpec(feat_dim=feat),
        background_field=FieldSpec(hidden=64, n_blocks=4, skips=(), z_dim=128, feat_dim=feat, downscale=12.0),
        n_feat=feat,
    )
    return dataclasses.replace(base, **_OFFICIAL_SCENES.get(name, {}))


# --- plain-value round trip (checkpoints hold JSON, so they load with weights_only=True) ---------------------------


def spec_to_json(spec: GeneratorSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def spec_from_json(text: str) -> GeneratorSpec:
    """The GeneratorSpec written by `spec_to_json` (unknown keys are refused with a sentence)."""
    data = json.loads(text)
    nested = {"object_field": FieldSpec, "background_field": FieldSpec, "boxes": BoxPrior}
    try:
        for key, cls in nested.items():
            data[key] = cls(**{k: _tuples(v) for k, v in data[key].items()})
        return GeneratorSpec(**{k: (v if k in nested else _tuples(v)) for k, v in data.items()})
    except (TypeError, KeyError) as err:
        raise ValueError(f"The checkpoint's model description is not one this studio knows: {err}.") from err
