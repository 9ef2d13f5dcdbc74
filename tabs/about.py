"""Start here (the first tab): example cards that fill a tab and run it, what the studio is, and the Health panel
(device, versions, compiled ops, optional files, presets) in a closed accordion."""

from __future__ import annotations

import gradio as gr

import tabs
from pipelines import REGISTRY
from pipelines.health import health

from .context import AppContext
from .showcase import Card, card_script, cards_for
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
    gr.Markdown(
        "## Start here\nPick an example: it opens its tab, fills the inputs and runs. Every result is recorded."
    )
    start_cards(cards_for([key for key, _ in tabs.TABS]))
    with gr.Accordion("What this studio is", open=False):
        gr.Markdown(INTRO)
    with gr.Accordion("Health: device, versions, compiled ops, optional files", open=False):
        report = health(ctx.device, ctx.models_dir)
        table = gr.Markdown(health_markdown(report), elem_id="health-table", label="Health")
        with gr.Accordion("Health report (JSON)", open=False):
            raw = gr.JSON(report, label="Health report (JSON)")
        refresh = gr.Button("Re-check", size="sm")
    refresh.click(bind(recheck, ctx=ctx), None, [table, raw], api_name="health")
    with gr.Accordion("Pipelines", open=False):
        gr.Markdown("\n".join(f"- **{k}**: {e.summary}" for k, e in REGISTRY.items()))
    _ = tab


def start_cards(cards: list[Card]) -> None:
    """The cards in rows of three (they wrap to one per row on a narrow screen); each button runs its example."""
    for first in range(0, len(cards), 3):
        with gr.Row(equal_height=True):
            for card in cards[first : first + 3]:
                with gr.Column(min_width=240, elem_classes=["studio-tile"]):
                    if card.thumbnail_path is not None:
                        gr.Image(
                            str(card.thumbnail_path),
                            show_label=False,
                            interactive=False,
                            height=180,
                            container=False,
                            buttons=[],
                            elem_classes=["studio-thumb"],
                        )
                    gr.Markdown(f"**{card.title}**  \n{card.blurb}")
                    button = gr.Button(f"Run: {card.title}", variant="primary", size="sm", elem_id=f"start-{card.tab}")
                    button.click(None, None, None, js=card_script(card))
