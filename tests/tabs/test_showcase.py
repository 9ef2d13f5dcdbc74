"""The demo pieces without a browser: start-here cards as data, the headline card and metrics table, readable
plots (subplots per metric kind, real log ticks), and every pipeline declaring its headline."""

from __future__ import annotations

import json
import re

import gradio as gr
import pytest

import pipelines
from pipelines.core.headline import Headline
from tabs.headline import card_html, headlines_of, metrics_rows, pipeline_of
from tabs.plots import cameras_figure, curves_figure, kind_of, log_ticks
from tabs.showcase import CARDS, MAX_CARDS, card_script, cards_for
from tabs.widgets import run_panel, show_result


def test_cards_skip_unregistered_tabs_and_keep_their_order():
    shown = cards_for(["nerf", "pose", "smpl", "volume"])
    assert [c.tab for c in shown] == ["nerf", "pose", "smpl", "volume"]
    assert len(cards_for([c.tab for c in CARDS])) == MAX_CARDS
    assert {"giraffe", "meshrcnn", "synsin"} <= {c.tab for c in CARDS}
    assert all(c.thumbnail_path is not None for c in CARDS), "every card has its thumbnail in assets/showcase"


def test_card_script_opens_the_tab_then_clicks_example_and_run():
    card = next(c for c in CARDS if c.tab == "nerf")
    script = card_script(card)
    ids = json.loads(re.search(r"const ids = (\{.*?\});", script).group(1))
    assert ids == {"tab": "nerf", "examples": "nerf-examples", "run": "nerf-run"}
    assert script.index("-button") < script.index("ids.examples") < script.index("ids.run")


def test_every_registered_pipeline_declares_a_headline():
    for name in pipelines.REGISTRY:
        declared = headlines_of(name)
        assert declared and all(isinstance(h, Headline) for h in declared), name


def test_headline_card_reads_the_run_id_and_formats_units():
    metrics = {"run_id": "20261206-101500-volume-abc123", "psnr_heldout": 31.137, "psnr_heldout_initial": 17.94}
    assert pipeline_of(metrics["run_id"]) == "volume"
    assert pipeline_of("20261206-101500-mesh-fit-abc123") == "mesh-fit"
    html = card_html(metrics, elapsed_s=15.2)
    assert "Held-out PSNR" in html and "31.1 dB" in html and "from 17.9 dB" in html and "15 s" in html
    assert card_html({"run_id": "x", "psnr_heldout": 1.0}) == "", "no pipeline, no card"
    assert card_html(None) == ""


def test_metrics_table_has_three_significant_figures():
    rows = metrics_rows({"run_id": "r1", "time_load_s": 0.0014996350000728853, "faces": 12000.0, "note": "ok"})
    assert rows[0] == ["run", "r1"]
    assert ["time load s", "0.00150"] in rows and ["faces", "12000"] in rows and ["note", "ok"] in rows


def test_result_card_follows_the_metrics_and_hides_when_empty():
    with gr.Blocks():
        panel = run_panel()
    assert panel.card in panel.outputs and panel.headline not in panel.outputs, "the API's outputs stay the same"
    metrics = {"run_id": "20261206-101500-pose-abc123", "error_deg": 0.0412, "start_error_deg": 30.0}
    card, table, raw = show_result(metrics, {"run_id": metrics["run_id"], "pipeline": "pose", "elapsed_s": 6.0})
    assert card["visible"] and "0.0412°" in card["value"] and "6.0 s" in card["value"]
    assert table["visible"] and raw["visible"]
    card, table, raw = show_result(None, None)
    assert not card["visible"] and not table["visible"] and not raw["visible"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("loss", "loss"), ("silhouette", "loss"), ("psnr_heldout", "PSNR (dB)"), ("iou", "share (0–1)"),
     ("error_deg", "error (°)"), ("mpjpe_mm", "error (mm)"), ("err_2d_px", "error (px)")],
)  # fmt: skip
def test_curves_go_to_the_subplot_of_their_kind(name, kind):
    assert kind_of(name) == kind


def test_curves_put_metrics_on_their_own_axes_with_real_log_ticks():
    history = {
        "loss": ([1, 2, 3], [0.5, 0.05, 0.004]),
        "psnr_heldout": ([1, 3], [18.0, 31.0]),
        "iou": ([1, 2, 3], [0.2, 0.5, 0.9]),
    }
    fig = curves_figure(history)
    axes = {trace.name: trace.yaxis for trace in fig.data}
    assert len(set(axes.values())) == 3, "losses, PSNR and IoU each on their own axis"
    loss_axis = fig.layout["yaxis"]
    assert loss_axis.type == "log" and list(loss_axis.ticktext) == [
        "0.005",
        "0.01",
        "0.02",
        "0.05",
        "0.1",
        "0.2",
        "0.5",
    ]
    assert fig.layout.legend.y >= 1.0, "the legend sits above the plot, clear of the axis titles"


def test_log_ticks_cover_wide_and_narrow_ranges():
    ticks, labels = log_ticks([1e-5, 3.0])
    assert labels == ["1e-05", "0.0001", "0.001", "0.01", "0.1", "1"]
    ticks, labels = log_ticks([0.0231, 0.0244])
    assert len(ticks) == 2 and labels == ["0.023", "0.024"]
    assert log_ticks([]) == ([], [])


def test_cameras_figure_draws_each_camera():
    fig = cameras_figure({"start": [0, 1, 3], "true": [2.0, 2.0, -2.0], "estimated": [2.1, 1.9, -2.0]})
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == ["object", "start", "true", "estimated"]
