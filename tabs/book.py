"""The "Reproduce the book's figure" section every capability tab gets: a menu of the tab's figures (the `FIGURES`
its pipeline modules declare), one button that runs the pipeline with the figure's settings as a recorded run, and
the book's description beside the result. `app.py` adds it under each tab, so no tab module knows about it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

import pipelines
from pipelines.core.events import Done, Preview
from pipelines.render.book_figures import BookFigure, figure_index

from .context import AppContext
from .stream import stream
from .widgets import RunPanel, bind, config_for, preset_radio, run_panel, stop_button, user_errors


def tab_figures(key: str) -> dict[str, BookFigure]:
    """The figures of tab `key`'s pipelines, by number, in registry order (imports those pipeline modules)."""
    modules = [pipelines.get(name) for name, entry in pipelines.REGISTRY.items() if entry.tab.key == key]
    return figure_index(tuple(fig for module in modules for fig in getattr(module, "FIGURES", ())))


def describe(number: str | None, *, figures: dict[str, BookFigure]) -> str:
    """The book's description of figure `number` (Markdown)."""
    fig = figures.get(number or "")
    if fig is None:
        return "Pick a figure."
    return f"**Figure {fig.number}: {fig.title}**\n\n{fig.book}\n\n*Made by the `{fig.pipeline}` pipeline.*"


@user_errors("Cannot make this figure")
def reproduce(
    figure_number: str,
    preset: str,
    request: gr.Request,
    *,
    ctx: AppContext,
    key: str,
    figures: dict[str, BookFigure],
    panel: RunPanel,
    picture: gr.Image,
) -> Iterator[dict[Any, Any]]:
    """Run the figure's pipeline with the figure's settings over `preset`, streaming progress; the figure at the end."""
    fig = figures.get(figure_number)
    if fig is None:
        raise gr.Error("Pick one of the book's figures first.")
    cfg = fig.config(config_for(ctx, pipelines.get(fig.pipeline).Config, preset))
    last: dict[str, np.ndarray] = {}

    def on_preview(event: Preview) -> dict[Any, Any]:
        if event.image is not None:
            last["image"] = event.image
        return {}

    def on_done(event: Done) -> dict[Any, Any]:
        path = event.files.get(fig.output) if fig.output else None
        image = np.asarray(Image.open(path).convert("RGB")) if path else last.get("image")
        return {picture: gr.update(value=image, label=f"Figure {fig.number}: {fig.title}")}

    yield {picture: gr.update(value=None)}
    yield from stream(
        ctx, panel, fig.pipeline, cfg, preset=preset, request=request, tab=f"{key}_figure",
        on_preview=on_preview, on_done=on_done,
    )  # fmt: skip


def section(ctx: AppContext, key: str) -> None:
    """The figure section of tab `key`, inside the current tab; nothing when its pipelines declare no figures."""
    figures = tab_figures(key)
    if not figures:
        return
    with gr.Accordion("Reproduce the book's figures", open=False, elem_id=f"{key}-book"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                choices = [(f"Figure {n}: {f.title}", n) for n, f in figures.items()]
                number = gr.Dropdown(
                    choices,
                    value=choices[0][1],
                    label="The book's figure",
                    info="Runs the pipeline with the book's settings for this figure",
                    elem_id=f"{key}-figure",
                )
                preset = preset_radio(ctx, label="Preset for the figure (full = the book's sizes and steps)")
                with gr.Row():
                    go = gr.Button("Reproduce", variant="primary", elem_id=f"{key}-figure-run")
                    stop_button(ctx, f"{key}_figure")
                text = gr.Markdown(describe(choices[0][1], figures=figures))
            with gr.Column(scale=2):
                picture = gr.Image(label="The figure", type="numpy", interactive=False, height=420)
        panel = run_panel(preview=True, curves=False, preview_label="Live preview", preview_height=240)
    number.change(bind(describe, figures=figures), number, text, api_name=False, queue=False)
    handler = bind(reproduce, ctx=ctx, key=key, figures=figures, panel=panel, picture=picture)
    go.click(
        handler, [number, preset], [*panel.outputs, picture], api_name=False, concurrency_id="gpu", concurrency_limit=1
    )
