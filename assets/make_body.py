"""Writes `assets/procedural_body.npz`: the default body of the SMPL tab, in the official SMPL file layout.

Run from the repository root: `python assets/make_body.py [--out PATH]` (about half a minute on a CPU).
The geometry and rig come from `pipelines.smpl.procedural_body.build_procedural_body`; the file loads through the
same loader as an official SMPL `.npz`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.smpl.body_model import load_body_model  # noqa: E402
from pipelines.smpl.model_files import PROCEDURAL_PATH  # noqa: E402
from pipelines.smpl.procedural_body import build_procedural_body, procedural_joints  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROCEDURAL_PATH, help="Where to write the .npz.")
    args = parser.parse_args(argv)
    arrays = build_procedural_body()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    model = load_body_model(args.out)  # the same loader an official file goes through
    _, joints = model.forward()
    designed = procedural_joints()
    drift_mm = 1000 * np.abs(joints[0].numpy() - designed).max()
    summary = model.summary()
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {summary['vertices']} vertices, "
        f"{summary['faces']} faces, {summary['joints']} joints, {summary['shape_coefficients']} shape directions; "
        f"regressed joints within {drift_mm:.1f} mm of the designed skeleton"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
