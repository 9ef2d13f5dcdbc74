"""The shared stream adapter: progress HTML, throttled updates, Done, Stop, and user errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr
import pytest

import app
from pipelines.inspect.pipeline import Config
from tabs.stream import stream
from tabs.widgets import progress_html, run_panel

ASSETS = Path(__file__).resolve().parents[2] / "assets"


class Request:
    session_hash = "test-session"


@pytest.fixture
def ctx_panel(tmp_path):
    ctx = app.make_context(data_dir=tmp_path, device="cpu")
    with gr.Blocks():
        panel = run_panel()
    return ctx, panel


def value_of(update):
    """The value in a component update (stream wraps the panels that hide while empty in gr.update)."""
    return update["value"] if isinstance(update, dict) and update.get("__type__") == "update" else update


def tiny_cfg(*files: Path) -> Config:
    return dataclasses.replace(Config.tiny(), files=tuple(str(f) for f in files))


def test_progress_html_shows_eta_and_escapes():
    text = progress_html(3, 10, "<b>hi</b>", 12.0)
    assert "width:30.0%" in text and "ETA 12 s" in text and "&lt;b&gt;" in text


def test_stream_reaches_done_and_records(ctx_panel):
    ctx, panel = ctx_panel
    updates = list(
        stream(ctx, panel, "inspect", tiny_cfg(ASSETS / "torus_binary.ply"), preset="tiny", request=Request(), tab="t")
    )
    last = updates[-1]
    assert 'data-state="done"' in last[panel.status]
    run_id = last[panel.metrics]["run_id"]
    assert ctx.store.get(run_id).status == "done"
    files = value_of(last[panel.files])
    assert all(Path(p).is_file() for p in files)
    assert any(Path(p).name == "metrics.json" for p in files), "the metrics JSON is a download"
    assert last[panel.card]["pipeline"] == "inspect" and last[panel.card]["run_id"] == run_id


def test_stop_flag_stops_and_records(ctx_panel):
    ctx, panel = ctx_panel
    gen = stream(
        ctx, panel, "inspect", tiny_cfg(ASSETS / "torus_binary.ply"), preset="tiny", request=Request(), tab="t"
    )
    first = next(gen)
    assert panel.status in first
    ctx.stop_flag("test-session", "t").set()
    rest = list(gen)
    assert 'data-state="stopped"' in rest[-1][panel.status]
    runs = ctx.store.list(status="stopped")
    assert len(runs) == 1


def test_user_error_becomes_gr_error(ctx_panel, tmp_path):
    ctx, panel = ctx_panel
    bad = tmp_path / "empty.ply"
    bad.write_bytes(b"")
    with pytest.raises(gr.Error):
        list(stream(ctx, panel, "inspect", tiny_cfg(bad), preset="tiny", request=Request(), tab="t"))
    assert ctx.store.list(status="failed")
