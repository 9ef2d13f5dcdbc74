"""2D keypoint targets for SMPLify: OpenPose-style JSON (BODY_25, COCO-18, SMPL-24) mapped onto the SMPL joints,
and uploads (JSON plus an optional photo) read and checked with one clear message per problem.

Pixels in the keypoints' own frame, as OpenPose writes it (OpenCV: x right, y down).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.smpl.layout import JOINT_NAMES

J = {n: i for i, n in enumerate(JOINT_NAMES)}
MAX_JSON_BYTES = 5_000_000
MAX_IMAGE_PIXELS = 40_000_000

# OpenPose keypoint index -> SMPL joint, for the two OpenPose layouts (face points have no SMPL joint).
BODY_25_TO_SMPL = {
    1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder", 6: "left_elbow",
    7: "left_wrist", 8: "pelvis", 9: "right_hip", 10: "right_knee", 11: "right_ankle", 12: "left_hip",
    13: "left_knee", 14: "left_ankle", 19: "left_foot", 22: "right_foot",
}  # fmt: skip
COCO_18_TO_SMPL = {
    1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder", 6: "left_elbow",
    7: "left_wrist", 8: "right_hip", 9: "right_knee", 10: "right_ankle", 11: "left_hip", 12: "left_knee",
    13: "left_ankle",
}  # fmt: skip
# LSP's 14 joints, the order of SMPLify's est_joints (the book's chapter-8 input); the head top stands for the head.
LSP_14_TO_SMPL = {
    0: "right_ankle", 1: "right_knee", 2: "right_hip", 3: "left_hip", 4: "left_knee", 5: "left_ankle",
    6: "right_wrist", 7: "right_elbow", 8: "right_shoulder", 9: "left_shoulder", 10: "left_elbow", 11: "left_wrist",
    12: "neck", 13: "head",
}  # fmt: skip
LAYOUTS = {
    25: ("OpenPose BODY_25", BODY_25_TO_SMPL),
    18: ("COCO-18", COCO_18_TO_SMPL),
    24: ("SMPL-24", None),
    14: ("LSP-14", LSP_14_TO_SMPL),
}


@dataclass
class Keypoints:
    """2D targets on the SMPL joints: `xy` (24, 2) pixels, `conf` (24,) in [0, 1] (0 = missing)."""

    xy: np.ndarray
    conf: np.ndarray
    width: int
    height: int
    layout: str
    image: np.ndarray | None = None  # uint8 (H, W, 3)


def parse_keypoints_json(text: str, name: str = "The keypoint file") -> tuple[np.ndarray, str, int]:
    """OpenPose-style JSON -> (K, 3) rows of x, y, confidence, the layout name, and the person picked.

    Accepts {"people": [{"pose_keypoints_2d": [x, y, c, ...]}, ...]} (the person with the largest total
    confidence is used), a bare {"pose_keypoints_2d": [...]}, or a flat list; K must be 25, 18 or 24.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name} is not valid JSON ({err.msg} at line {err.lineno}).") from None
    except RecursionError:  # "[[[[...": Python's parser gives up at its recursion limit
        raise ValueError(f"{name} is nested too deeply to be a keypoint file.") from None
    people = data.get("people") if isinstance(data, dict) else None
    if isinstance(data, dict) and people is None and "pose_keypoints_2d" in data:
        people = [data]
    if isinstance(data, list):
        people = [{"pose_keypoints_2d": data}]
    if not isinstance(people, list) or not people:
        raise ValueError(
            f'{name} has no people: expected OpenPose JSON like {{"people": [{{"pose_keypoints_2d": [...]}}]}}.'
        )
    rows = []
    for person in people:
        flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(flat, list):
            raise ValueError(f"{name}: each person needs a pose_keypoints_2d list.")
        try:
            arr = np.asarray(flat, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: pose_keypoints_2d must hold numbers only.") from None
        if arr.size % 3:
            raise ValueError(
                f"{name}: pose_keypoints_2d has {arr.size} numbers, not a multiple of 3 (x, y, confidence)."
            )
        k = arr.size // 3
        if k not in LAYOUTS:
            raise ValueError(
                f"{name} has {k} joints; expected 25 (OpenPose BODY_25), 18 (COCO-18), 24 (SMPL order) or 14 (LSP)."
            )
        rows.append(arr.reshape(k, 3))
    best = int(np.argmax([np.nansum(r[:, 2]) for r in rows]))
    kp = rows[best]
    if not np.isfinite(kp).all():
        bad = int(np.flatnonzero(~np.isfinite(kp).all(1))[0])
        raise ValueError(f"{name} contains NaN or infinite values (keypoint {bad}).")
    if (kp[:, 2] < 0).any():
        raise ValueError(f"{name} has negative confidences; they must lie in [0, 1].")
    if not (kp[:, 2] > 0).any():
        raise ValueError(f"{name}: every keypoint has confidence 0, so there is nothing to fit.")
    return kp, LAYOUTS[len(kp)][0], best


def read_est_joints(path: Path) -> np.ndarray:
    """SMPLify's `est_joints` in an `.npz` (read without pickle): LSP-14 joints as (3, 14), (3, 14, N) (the first
    picture is used) or (14, 3), rows x, y, confidence -> (14, 3)."""
    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"{path.name} is not an .npz file.") from None
    if unpacked > MAX_JSON_BYTES:
        raise ValueError(f"{path.name} unpacks to {unpacked / 1e6:.0f} MB; est_joints should take a few KB.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            arr = np.asarray(archive["est_joints" if "est_joints" in names else names[0]], dtype=np.float64)
    except (ValueError, OSError, IndexError) as err:
        raise ValueError(f"{path.name} is not an .npz of keypoints that can be read without pickle ({err}).") from None
    if arr.ndim == 3 and arr.shape[:2] == (3, 14):
        arr = arr[:, :, 0]
    if arr.shape == (3, 14):
        arr = arr.T
    if arr.shape != (14, 3) or not np.isfinite(arr).all():
        raise ValueError(f"{path.name}: est_joints must be LSP's 14 joints as (3, 14[, N]) or (14, 3) finite numbers.")
    if not (arr[:, 2] > 0).any():
        raise ValueError(f"{path.name}: every joint has confidence 0, so there is nothing to fit.")
    return arr


def to_smpl_joints(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) keypoints in one of `LAYOUTS` -> SMPL-joint targets (24, 2) and confidences (24,) (0 = no target)."""
    xy = np.zeros((24, 2))
    conf = np.zeros(24)
    mapping = LAYOUTS[len(kp)][1]
    if mapping is None:
        xy, conf = kp[:, :2].copy(), np.clip(kp[:, 2], 0.0, 1.0)
    else:
        for k, joint in mapping.items():
            xy[J[joint]] = kp[k, :2]
            conf[J[joint]] = np.clip(kp[k, 2], 0.0, 1.0)
    return xy, conf


def load_upload(keypoints_path: str, image_path: str) -> Keypoints:
    """Read and validate an uploaded keypoint JSON (and optional image) with one clear message per problem."""
    if not keypoints_path:
        raise ValueError("Upload a keypoint JSON file (OpenPose format) to fit, or use a synthetic case.")
    path = Path(keypoints_path)
    if not path.is_file():
        raise ValueError(f"Keypoint file {path.name} was not found.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"The keypoint file is larger than {MAX_JSON_BYTES // 1_000_000} MB; it should be a few KB.")
    if path.suffix.lower() == ".npz":
        kp, layout = read_est_joints(path), LAYOUTS[14][0]
    else:
        kp, layout, _ = parse_keypoints_json(path.read_text(errors="replace"), f"The keypoint file {path.name}")
    xy, conf = to_smpl_joints(kp)
    if conf.max() <= 0:
        raise ValueError("None of the keypoints maps to a body joint (face points alone cannot be fitted).")
    image = None
    if image_path:
        image = _read_image(Path(image_path))
        height, width = image.shape[:2]
    else:
        vis = xy[conf > 0]
        width, height = (int(math.ceil(v)) for v in (vis.max(0) * 1.15 + 20))
    vis = xy[conf > 0]
    if (vis < -0.5 * np.array([width, height])).any() or (vis > 1.5 * np.array([width, height])).any():
        raise ValueError("The keypoints lie far outside the image: are they for this image, in pixels?")
    torso = [
        (a, b)
        for a, b in ((J["left_shoulder"], J["left_hip"]), (J["right_shoulder"], J["right_hip"]))
        if conf[a] > 0 and conf[b] > 0
    ]
    if not torso:
        raise ValueError("SMPLify needs a shoulder and the hip on the same side to estimate the camera distance.")
    return Keypoints(xy, conf, width, height, layout, image)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"The image is {img.width}×{img.height}; at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels are accepted."
                )
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path.name} is not a readable image ({err}).") from None
