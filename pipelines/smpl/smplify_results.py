"""SMPLify's files: the fitted mesh (GLB, OBJ), its parameters (JSON), and for synthetic cases the keypoints and
photo, so they can go back in as an upload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.smpl.body_model import BodyModel
from pipelines.smpl.body_views import export_glb, export_obj
from pipelines.smpl.keypoints import Keypoints
from pipelines.smpl.smplify_fit import FitState
from pipelines.smpl.smplify_pictures import save_png
from pipelines.smpl.smplify_synthetic import Synthetic


def write_results(
    out_dir: Path, model: BodyModel, state: FitState, verts_cam: np.ndarray, faces: np.ndarray, focal: float,
    kp: Keypoints, synthetic: Synthetic | None,
) -> dict[str, Path]:  # fmt: skip
    """Write fit.glb, fit.obj (upright, centred), params.json, and for synthetic cases keypoints.json and image.png."""
    upright = verts_cam * np.array([1.0, -1.0, -1.0])  # camera frame -> Y up, facing the viewer (glTF)
    upright = upright - upright.mean(0)
    files = {
        "glb": export_glb(upright, faces, np.tile((0.55, 0.75, 0.95), (len(upright), 1)), out_dir / "fit.glb"),
        "obj": export_obj(upright, faces, out_dir / "fit.obj"),
    }
    params = {k: v.tolist() for k, v in state.detached().items()}
    params.update(focal_length=focal, image_size=[kp.width, kp.height], body_model=model.name, frame="OpenCV camera")
    if synthetic is not None:
        params["truth"] = {
            "betas": synthetic.betas.tolist(),
            "pose": synthetic.pose.tolist(),
            "transl": synthetic.transl.tolist(),
        }
    (out_dir / "params.json").write_text(json.dumps(params, indent=1))
    files["params"] = out_dir / "params.json"
    if synthetic is not None:
        flat = np.concatenate([kp.xy, kp.conf[:, None]], 1).reshape(-1)
        doc = {
            "format": "SMPL-24 joints in SMPL order",
            "image_size": [kp.width, kp.height],
            "people": [{"pose_keypoints_2d": flat.round(3).tolist()}],
        }
        (out_dir / "keypoints.json").write_text(json.dumps(doc))
        files["keypoints"] = out_dir / "keypoints.json"
        if kp.image is not None:
            save_png(kp.image, out_dir / "image.png")
            files["image"] = out_dir / "image.png"
    return files
