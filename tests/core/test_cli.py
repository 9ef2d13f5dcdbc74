"""The CLI drives the same generators and records the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipelines.core.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_list():
    out = cli("--list")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0].startswith("inspect\t")


def test_run_inspect_tiny_records_the_run(tmp_path):
    ply = ROOT / "assets" / "torus_binary.ply"
    out = cli("inspect", "--preset", "tiny", "--files", str(ply), "--sample-points", "100", "--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert '"num_faces"' in out.stdout
    runs = RunStore(tmp_path).list()
    assert len(runs) == 1 and runs[0].status == "done" and runs[0].source == "cli" and runs[0].preset == "tiny"
    assert runs[0].owner == "operator"  # CLI runs are the operator's
    assert runs[0].config["sample_points"] == 100
    assert all(Path(p).is_file() for p in runs[0].artifacts.values())


def test_bad_field_and_bad_file_fail_clearly(tmp_path):
    out = cli("inspect", "--preset", "tiny", "--sample-points", "many", "--data-dir", str(tmp_path))
    assert out.returncode == 2 and "expects a number" in out.stderr
    out = cli("nope")
    assert out.returncode == 2 and "Unknown pipeline" in out.stderr
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000\nproperty float x\nend_header\n")
    out = cli("inspect", "--preset", "tiny", "--files", str(bad), "--data-dir", str(tmp_path))
    assert out.returncode == 1 and "error:" in out.stderr and "Traceback" not in out.stderr
    assert RunStore(tmp_path).list(status="failed")
