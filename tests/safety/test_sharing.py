"""Two visitors of one app: each sees and gets only their own runs, the data dir is never served, and under --auth
nothing answers without a login."""

from __future__ import annotations

import json
import types
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

import app
from pipelines.core.runs import OPERATOR
from tabs import runs as runs_tab

from .conftest import launched

ROOT = Path(__file__).resolve().parents[2]
PLY = ROOT / "assets" / "torus_binary.ply"


def inspect_run(visitor) -> str:
    """Visitor runs /inspect on the shipped torus; returns the run id."""
    result = visitor.predict(mesh_files=handle_file(str(PLY)), surface_points=100, api_name="/inspect")
    return result[1]["run_id"]


def error_text(visitor, api_name: str, *args) -> str:
    with pytest.raises(AppError) as err:
        visitor.predict(*args, api_name=api_name)
    return str(err.value)


def fetch(url: str, path: Path | str, **kwargs) -> int:
    return httpx.get(f"{url}gradio_api/file={path}", timeout=30, **kwargs).status_code


@pytest.fixture(scope="module")
def run_of_a(visitor_a) -> str:
    return inspect_run(visitor_a)


def test_b_sees_none_of_a_runs(safe_app, visitor_a, visitor_b, run_of_a):
    table_a = json.dumps(visitor_a.predict("all", "all", api_name="/runs_list")[0])
    table_b = json.dumps(visitor_b.predict("all", "all", api_name="/runs_list")[0])
    assert run_of_a in table_a and run_of_a not in table_b
    assert safe_app.ctx.store.get(run_of_a).owner == f"session:{visitor_a.session_hash}"
    # A's run reopens and bundles for A
    assert str(visitor_a.predict(run_of_a, api_name="/runs_bundle")).endswith(".zip")
    _, _, mesh, summary = visitor_a.predict(run_of_a, api_name="/runs_open")
    assert summary["id"] == run_of_a and str(mesh).endswith(".glb")


@pytest.mark.parametrize("api_name", ["/runs_bundle", "/runs_open"])
def test_another_visitors_run_answers_like_a_missing_one(visitor_b, run_of_a, api_name):
    missing = "20000101-000000-inspect-000000"
    theirs = error_text(visitor_b, api_name, run_of_a)
    nothing = error_text(visitor_b, api_name, missing)
    assert "No run with id" in theirs
    assert theirs.replace(run_of_a, "ID") == nothing.replace(missing, "ID")


def test_b_plots_none_of_a_metrics(visitor_b, run_of_a):
    figure = visitor_b.predict("all", "all", ["time_load_s"], api_name="/runs_plot")
    assert run_of_a not in json.dumps(figure)


def test_the_data_dir_is_not_served(safe_app, visitor_a, run_of_a):
    ctx, url = safe_app.ctx, safe_app.url
    record = ctx.store.get(run_of_a)
    upload = next((Path(record.out_dir) / "upload").iterdir())
    artifact = next(iter(record.artifacts.values()))
    probes = [
        ctx.data_dir / "runs.sqlite",  # the whole run store
        upload,  # A's upload, by the path the issue reported
        artifact,  # A's output in the run folder
        ctx.data_dir / ".secret",
        ctx.sessions_dir / visitor_a.session_hash / "out",  # a session folder by its hash: not its name
        ctx.data_dir / "runs" / run_of_a,
        ctx.sessions_dir,  # a listing
    ]
    for path in probes:
        assert Path(path).exists() or "sessions" in str(path), path
        assert fetch(url, path) in (403, 404), f"{path} is served"
    assert fetch(url, ROOT / "assets" / "torus_binary.ply") == 200  # assets are served


def test_outputs_come_under_unguessable_names(safe_app, visitor_a):
    # The URLs of a run's outputs name no data-dir path, and the copy the browser gets is a file of the session.
    result = visitor_a.predict(mesh_files=handle_file(str(PLY)), surface_points=100, api_name="/inspect")
    assert str(safe_app.ctx.data_dir) not in json.dumps(result[1:2] + result[3:8], default=str)
    run = safe_app.ctx.store.get(result[1]["run_id"])
    published = list((safe_app.ctx.sessions_dir / safe_app.ctx.session_key(visitor_a.session_hash)).rglob("*.glb"))
    assert published and all(run.out_dir not in str(p) for p in published)
    assert len(safe_app.ctx.session_key(visitor_a.session_hash)) == 32


def test_under_auth_nothing_answers_without_login(tmp_path):
    with launched(tmp_path / "data", auth=("alice", "s3cret")) as served:
        url = served.url
        asset = ROOT / "assets" / "torus_binary.ply"
        assert httpx.get(f"{url}gradio_api/info", timeout=30).status_code == 401
        assert fetch(url, asset) == 401
        call = httpx.post(f"{url}gradio_api/call/runs_list", json={"data": ["all", "all"]}, timeout=30)
        assert call.status_code == 401
        join = httpx.post(f"{url}gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"})
        assert join.status_code == 401
        alice = served.visitor(auth=("alice", "s3cret"))
        run_id = inspect_run(alice)
        assert served.ctx.store.get(run_id).owner == "user:alice"
        assert run_id in json.dumps(alice.predict("all", "all", api_name="/runs_list")[0])


def test_shared_runs_and_the_operator_see_everyone(tmp_path):
    ctx = app.make_context(data_dir=tmp_path, device="cpu", shared_runs=True)
    mine = ctx.store.start("inspect", {}, "cpu", owner="session:a")
    theirs = ctx.store.start("inspect", {}, "cpu", owner="session:b")
    cli = ctx.store.start("inspect", {}, "cpu")  # the CLI's: the operator's
    assert ctx.store.get(cli).owner == OPERATOR
    visitor = types.SimpleNamespace(session_hash="a", username=None)
    assert {r.id for r in runs_tab.visible_runs(ctx, visitor)} == {mine, theirs, cli}
    ctx.shared_runs = False
    assert {r.id for r in runs_tab.visible_runs(ctx, visitor)} == {mine}
    assert {r.id for r in ctx.store.list()} == {mine, theirs, cli}  # the operator (no owner) sees all


def test_history_thumbnails_headlines_and_metrics_on_their_own_axes(tmp_path):
    import numpy as np

    from pipelines.core.events import Done, Preview, Progress
    from pipelines.core.runner import Run
    from pipelines.mesh_fit.pipeline import Config

    ctx = app.make_context(data_dir=tmp_path, device="cpu")
    visitor = types.SimpleNamespace(session_hash="a", username=None)

    def fitted(cfg):
        yield Progress(1, 2, {"loss": 2.0, "chamfer": 0.5})
        yield Preview(1, image=np.full((48, 64, 3), 90, np.uint8))
        yield Progress(2, 2, {"loss": 1.0, "chamfer": 0.25})
        yield Done({"chamfer": 0.25, "f1": 0.9})

    run = Run("mesh-fit", fitted, Config.tiny(), ctx.store, ctx.runs_dir, owner=ctx.owner(visitor))
    list(run)
    rows, _, pictures, ids = runs_tab.list_runs("all", "all", visitor, ctx=ctx)
    assert ids == [run.id] and len(pictures) == 1
    published, caption = pictures[0]
    assert caption.startswith("mesh-fit · ") and str(ctx.runs_dir) not in published and Path(published).is_file()
    headline = rows[0][runs_tab.COLUMNS.index("headline")]
    assert headline  # the pipeline's HEADLINE (or its first metrics) in words
    figure = runs_tab.plot_metric("all", "all", ["loss", "chamfer"], visitor, ctx=ctx)
    assert {t.yaxis for t in figure.data} == {"y", "y2"}  # each metric on its own axis
    assert all(t.name.startswith("mesh-fit · ") for t in figure.data)
    pictures, _, _, summary = runs_tab.open_run(run.id, visitor, ctx=ctx)
    assert summary["id"] == run.id and pictures
