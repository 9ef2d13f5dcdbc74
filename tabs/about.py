"""About tab: what the studio is, and the Health panel (device, versions, compiled ops, optional files, presets)."""

from __future__ import annotations

import gradio as gr

from pipelines import REGISTRY
from pipelines.health import health

from .context import AppContext
from .widgets import bind

INTRO = """
Hands-on 3D deep learning with PyTorch3D, one tab per capability. Every tab is a thin view over a pipeline
that also runs from the command line (`python -m pipelines <name>`), and every run is recorded in the **Runs** tab.

**Nothing is downloaded.** No pretrained weights, data sets or body models are fetched, ever. Every model here is
trained from scratch on data the app makes itself (procedural meshes rendered with PyTorch3D), or loaded from a
file *you* supply (an upload, or the operator's `--models-dir`) through the same loading code.

**Presets.** `tiny` runs in seconds (tests), `quick` in about a minute on a 2-core CPU (the default without a GPU),
`full` uses the book's settings (the default with a GPU). You can switch in each tab.
"""


def health_markdown(report: dict) -> str:
    ops = report["pytorch3d_compiled_ops"]
    lines = [
        "| Check | Result |",
        "|---|---|",
        f"| Device | {report['device']} |",
        *(f"| {k} | {v} |" for k, v in report["versions"].items()),
        f"| PyTorch3D compiled ops | {'OK: load and run (' + ops['detail'] + ')' if ops['ok'] else 'FAILED: ' + ops['detail']} |",
        f"| Models dir | {report['models_dir'] or 'not set (--models-dir)'} |",
    ]
    for what, found in report["optional_files"].items():
        lines.append(f"| {what} | {', '.join(found) if isinstance(found, list) else found} |")
    lines.append(f"| SMPL body model in use | {report['smpl_body_model']} |")
    presets = ", ".join(f"{k}: **{v}**" for k, v in report["default_preset"].items())
    lines.append(f"| Default presets on this device | {presets} |")
    return "\n".join(lines)


def recheck(*, ctx: AppContext) -> tuple[str, dict]:
    """/health: the Health report again, as the table and as JSON."""
    report = health(ctx.device, ctx.models_dir)
    return health_markdown(report), report


def build(ctx: AppContext, tab: gr.Tab) -> None:
    gr.Markdown(INTRO)
    with gr.Accordion("Health", open=True):
        report = health(ctx.device, ctx.models_dir)
        table = gr.Markdown(health_markdown(report), elem_id="health-table", label="Health")
        raw = gr.JSON(report, label="Health report (JSON)", open=False)
        refresh = gr.Button("Re-check")
    refresh.click(bind(recheck, ctx=ctx), None, [table, raw], api_name="health")
    with gr.Accordion("Pipelines", open=False):
        gr.Markdown("\n".join(f"- **{k}**: {e.summary}" for k, e in REGISTRY.items()))
