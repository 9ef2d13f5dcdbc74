"""The pieces every tab shares: preset radio, upload boxes, preset-following numbers, configs stamped with the app's
settings, user-error mapping, GPU click wiring, the results panel, and (from viewer.py) the Model3D viewer."""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import math
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData, ListFiles
from pydantic import model_validator

from pipelines.core.config import PRESETS, field_docs, make_preset
from pipelines.core.device import default_preset

from .context import AppContext
from .headline import TABLE_HEADERS, card_html, metrics_rows

# The Model3D viewer lives in viewer.py; tabs import it from here with the other shared pieces.
from .viewer import HIDE_WHEN_EMPTY
from .viewer import model3d as model3d
from .viewer import refresh_on_select as refresh_on_select
from .viewer import show_in_viewer as show_in_viewer
from .viewer import viewer_file as viewer_file

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
"""The delimiters every lesson's gr.Markdown uses: $$ display $$ and $ inline $."""

MESH_TYPES = (".ply", ".obj", ".mtl", ".glb", ".gltf", ".bin", ".stl", ".off", ".zip")
"""What a mesh upload accepts: the 3D formats, an OBJ's MTL, a glTF's buffers, or a zip of them."""
IMAGE_TYPES = (".png", ".jpg", ".jpeg")
"""Texture and photo uploads."""
MESH_WITH_TEXTURE_TYPES = MESH_TYPES + IMAGE_TYPES
"""A mesh upload that may carry its texture images beside it."""


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------


PRESET_INFO = "tiny: seconds (tests) · quick: about a minute on a CPU · full: the book's settings. The boxes follow it."
"""The help every preset radio shows."""


def preset_radio(ctx: AppContext, label: str = "Preset (full = the book's)", info: str = PRESET_INFO) -> gr.Radio:
    """tiny / quick / full, defaulting to this device's preset (full on a GPU, quick on a CPU)."""
    return gr.Radio(list(PRESETS), value=default_preset(ctx.device), label=label, info=info)


class OneOrMoreFiles(ListFiles):
    # A several-files box's payload that also takes one file, as a list of one: an API caller may send
    # `handle_file(path)` where the box takes `[handle_file(path), ...]` (ListFiles alone answers a pydantic error).

    @model_validator(mode="before")
    @classmethod
    def one_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, (dict, FileData)) else value


def upload_box(label: str, types: Sequence[str] = MESH_TYPES, multiple: bool = True, **kwargs: Any) -> gr.File:
    """A file upload for meshes (several files: an OBJ with its MTL and textures) or other given types.

    A several-files box also accepts one file from an API caller (see `OneOrMoreFiles`)."""
    box = gr.File(label=label, file_count="multiple" if multiple else "single", file_types=list(types), **kwargs)
    if multiple:
        box.data_model = OneOrMoreFiles
    return box


def upload_paths(files: Any) -> tuple[str, ...]:
    """The paths of a gr.File value (one file, a list, or dicts with a path), in order; () when empty.

    API callers may pass one file where the box takes several: a single value is treated as a list of one."""
    if not files:
        return ()
    items = files if isinstance(files, (list, tuple)) else [files]
    return tuple(str(f.get("path") if isinstance(f, dict) else getattr(f, "name", f)) for f in items if f)


def upload_path(file: Any) -> str | None:
    """The first path of a gr.File value, or None."""
    paths = upload_paths(file)
    return paths[0] if paths else None


def preset_numbers(
    ctx: AppContext,
    preset: gr.Radio,
    config_cls: type,
    fields: dict[str, str],
    integers: Iterable[str] = (),
    limits: dict[str, tuple[float | None, float | None]] | None = None,
) -> dict[str, gr.Number]:
    """Number boxes for Config fields that show the chosen preset's value and follow the preset radio.

    `fields` maps a field name to its label; the field's doc string becomes the box's tooltip. A box holds a real
    value at all times (Gradio's browser side sends 0 for an empty number box, so "empty = the preset's" cannot be
    told from a typed 0): what it shows is what runs. API callers who leave a box out get the value it starts with,
    the device's default preset's. `limits` maps a field to the (minimum, maximum) its box accepts (None: unbounded).
    """
    integers = set(integers)
    limits = limits or {}
    docs = field_docs(config_cls)
    start = make_preset(config_cls, default_preset(ctx.device))
    boxes = {
        name: gr.Number(
            getattr(start, name),
            label=label,
            info=docs.get(name) or None,
            precision=0 if name in integers else None,
            minimum=limits.get(name, (None, None))[0],
            maximum=limits.get(name, (None, None))[1],
        )
        for name, label in fields.items()
    }

    def follow(choice: str) -> Any:
        cfg = make_preset(config_cls, choice if choice in PRESETS else default_preset(ctx.device))
        values = [getattr(cfg, name) for name in fields]
        return values[0] if len(values) == 1 else values  # Gradio takes one output's value bare

    preset.change(follow, preset, list(boxes.values()), api_name=False, queue=False)
    return boxes


def number_value(value: Any, label: str, low: float = -math.inf, high: float = math.inf) -> float | None:
    """A number box's value checked against [low, high] (a gr.Error names the box); None when it is empty."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{label} must be a number.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise gr.Error(f"{label} must be between {low:g} and {high:g}.")
    return number


def number_overrides(rows: Iterable[tuple[Any, str, str, float, float]], whole: tuple[str, ...] = ()) -> dict[str, Any]:
    """Config overrides from number boxes, given as (value, field, label, low, high) rows checked in turn (gr.Error).
    Empty boxes are left out; the fields named in `whole` become ints."""
    changes: dict[str, Any] = {}
    for value, field, label, low, high in rows:
        number = number_value(value, label, low, high)
        if number is not None:
            changes[field] = int(number) if field in whole else number
    return changes


# ---------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------


def config_for(ctx: AppContext, config_cls: type, preset: str | None, **fields: Any) -> Any:
    """The preset's Config with the user's `fields`, stamped with the app's device, upload limit and models dir.

    Every run a tab starts goes through here, so `--device`, `--max-upload-mb` and `--models-dir` reach them all.
    Fields set to None keep the preset's value. A bad preset or value becomes a gr.Error."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    stamped: dict[str, Any] = {"device": str(ctx.device)}
    if "max_upload_mb" in names:
        stamped["max_upload_mb"] = ctx.max_upload_mb
    if "models_dir" in names:
        stamped["models_dir"] = ctx.models_dir
    unknown = set(fields) - names
    if unknown:
        raise TypeError(f"{config_cls.__module__}.Config has no fields {sorted(unknown)}")
    chosen = preset if preset in PRESETS else default_preset(ctx.device)
    try:
        return dataclasses.replace(
            make_preset(config_cls, chosen), **{k: v for k, v in fields.items() if v is not None}, **stamped
        )
    except ValueError as err:
        raise gr.Error(str(err), title="Check the settings") from None


# ---------------------------------------------------------------------------------------------------------------
# Errors and wiring
# ---------------------------------------------------------------------------------------------------------------


def user_errors(title: str) -> Callable[[Callable], Callable]:
    """Decorates a handler so a ValueError (the pipelines' user errors) reaches the user as a gr.Error sentence.

    Works for plain and generator handlers (Gradio streams only generator functions) and keeps the signature, so
    the API's parameter names stay the handler's."""

    def decorate(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def stream_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    yield from fn(*args, **kwargs)
                except gr.Error:
                    raise
                except ValueError as err:
                    raise gr.Error(str(err), title=title) from None

            return stream_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except ValueError as err:
                raise gr.Error(str(err), title=title) from None

        return wrapper

    return decorate


def bind(fn: Callable, /, **bound: Any) -> Callable:
    """`fn` with keyword-only arguments such as `ctx` or a panel bound, keeping the other parameters' names (which
    Gradio shows as the API's parameter names) and the generator-ness Gradio streams by."""
    partial = functools.partial(fn, **bound)
    signature = inspect.signature(fn)
    params = [p for name, p in signature.parameters.items() if name not in bound]
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream_bound(*args: Any, **kwargs: Any) -> Any:
            yield from partial(*args, **kwargs)

        handler = stream_bound
    else:

        @functools.wraps(fn)
        def plain_bound(*args: Any, **kwargs: Any) -> Any:
            return partial(*args, **kwargs)

        handler = plain_bound
    # Gradio reads the parameters' names (the API's) from the signature and finds gr.Request by type hint: give the
    # handler the unbound parameters and their resolved hints, not the wrapped function's.
    hints = typing.get_type_hints(fn)
    del handler.__wrapped__
    handler.__signature__ = signature.replace(parameters=params)
    handler.__annotations__ = {k: v for k, v in hints.items() if k not in bound}
    return handler


def gpu_click(trigger: Any, fn: Callable, inputs: Any, outputs: Any, api_name: str) -> Any:
    """Wires `trigger.click` to `fn` on the shared GPU slot (one run at a time on the device)."""
    return trigger.click(fn, inputs, outputs, api_name=api_name, concurrency_id="gpu", concurrency_limit=1)


def gpu_then(event: Any, fn: Callable, inputs: Any, outputs: Any, api_name: str) -> Any:
    """Chains `fn` after `event` on the shared GPU slot, as `gpu_click` does: for a run that must read what a cheap
    unqueued event (such as gathering the settings) has just written."""
    return event.then(fn, inputs, outputs, api_name=api_name, concurrency_id="gpu", concurrency_limit=1)


# ---------------------------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------------------------


def shown_file(path: str | Path | None) -> str | None:
    """A file for an output that `show_when_filled` hides while empty (the path as text, or None)."""
    return str(path) if path else None


def show_when_filled(*components: Any) -> None:
    """Each output (picture, plot, video, read-only files) is hidden while it shows Gradio's empty placeholder and
    shown once it has a value: the app's CSS does it (`HIDE_WHEN_EMPTY`), so the component stays mounted (one that an
    update makes visible together with its value can come up empty in Gradio 6.31) and the API is untouched.
    Call it inside the Blocks context, before the app's config is made."""
    for component in components:
        component.visible = True
        classes = component.elem_classes
        classes = [classes] if isinstance(classes, str) else list(classes or [])
        component.elem_classes = classes if HIDE_WHEN_EMPTY in classes else [*classes, HIDE_WHEN_EMPTY]


@dataclass
class RunPanel:
    """The results panel every long-running tab shows: progress, the result card (headline numbers and a metrics
    table), live preview, curves, downloads, and the raw metrics JSON in a closed accordion.
    Create with `run_panel()` inside a Blocks context.

    `outputs` are what a run's event updates (a streaming handler's outputs): the status, preview, curves, metrics
    JSON and files the API returns, plus the `card` State (which the API does not return). The headline card and
    the table follow the metrics JSON by a change event, so they need no place among the outputs."""

    status: gr.HTML
    preview: gr.Image | None
    curves: gr.Plot | None
    metrics: gr.JSON
    files: gr.File
    headline: gr.HTML | None = None
    table: gr.Dataframe | None = None
    card: gr.State | None = None
    """{"pipeline": key, "elapsed_s": seconds} of the last finished run, set by `stream`."""
    raw: gr.Accordion | None = None

    @property
    def outputs(self) -> list[Any]:
        parts = (self.status, self.preview, self.curves, self.metrics, self.files, self.card)
        return [c for c in parts if c is not None]

    @property
    def hidden_until_filled(self) -> list[Any]:
        """The panels that stay hidden while they are empty (see `show_when_filled`)."""
        return [c for c in (self.preview, self.curves, self.files) if c is not None]


def progress_html(step: int, total: int, message: str, eta_s: float | None, state: str = "running") -> str:
    """A progress bar with step count, ETA and the latest message (state: running, done, stopped, failed)."""
    frac = 0.0 if total <= 0 else min(1.0, step / total)
    eta = "" if eta_s is None else f" · ETA {format_seconds(eta_s)}"
    count = f"{step}/{total}" if total else ""
    return (
        f'<div class="studio-progress" data-state="{state}">'
        f'<div class="studio-bar"><div class="studio-fill" style="width:{frac * 100:.1f}%"></div></div>'
        f'<div class="studio-text">{html.escape(state)} {count}{eta} · {html.escape(message)}</div></div>'
    )


def format_seconds(s: float) -> str:
    s = max(0.0, s)
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def run_panel(
    *,
    preview: bool = True,
    curves: bool = True,
    preview_label: str = "Live preview",
    preview_height: int = 360,
    stacked: bool = False,
) -> RunPanel:
    """Lays out a run's results, results first: the progress bar, the headline card, the picture and curves, the
    metrics table, the downloads, and the raw JSON in a closed accordion. Empty parts stay hidden. `stacked` gives
    the picture a row of its own (for wide strips such as target | render | error) with the curves below it."""
    status = gr.HTML(progress_html(0, 0, "Ready.", None, "idle"), elem_classes=["studio-status"], label="Progress")
    headline = gr.HTML("", visible=False, elem_classes=["studio-card"], label="Result")
    with gr.Row(equal_height=False):
        image = (
            gr.Image(
                label=preview_label,
                type="numpy",
                interactive=False,
                height=preview_height,
                elem_classes=["studio-picture"],
            )
            if preview
            else None
        )
        plot = gr.Plot(label="Loss and metric curves") if curves and not stacked else None
    if curves and stacked:
        with gr.Row(equal_height=False):
            plot = gr.Plot(label="Loss and metric curves")
    with gr.Row(equal_height=False):
        table = gr.Dataframe(
            headers=TABLE_HEADERS, label="Final metrics", interactive=False, visible=False, wrap=True, max_height=320
        )
        files = gr.File(label="Downloads", file_count="multiple", interactive=False, height=320)
    with gr.Accordion("Raw metrics (JSON)", open=False, visible=False) as raw:
        metrics = gr.JSON(label="Final metrics (JSON)")
    card = gr.State(None)
    panel = RunPanel(status, image, plot, metrics, files, headline, table, card, raw)
    metrics.change(show_result, [metrics, card], [headline, table, raw], api_name=False, queue=False)
    show_when_filled(*panel.hidden_until_filled)
    return panel


def show_result(metrics: dict | None, card: dict | None) -> tuple[Any, Any, Any]:
    """The headline card, the metrics table and the raw-JSON accordion for a run's final metrics (hidden when
    there are none, as at the start of a run)."""
    card = card if isinstance(card, dict) and metrics and card.get("run_id") == metrics.get("run_id") else {}
    text = card_html(metrics, card.get("pipeline"), card.get("elapsed_s")) if metrics else ""
    rows = metrics_rows(metrics)
    return (
        gr.update(value=text, visible=bool(text)),
        gr.update(value=rows or None, visible=bool(rows)),
        gr.update(visible=bool(metrics)),
    )


def stop_button(ctx: AppContext, tab: str) -> gr.Button:
    """A small secondary Stop button that sets the session's stop flag for `tab` (outside the GPU queue, so it acts
    at once). It reads as disabled unless a run panel in the same tab shows a running run (the app's CSS)."""
    button = gr.Button("Stop", variant="secondary", size="sm", elem_classes=["studio-stop"], elem_id=f"{tab}-stop")
    button.click(bind(stop_run, ctx=ctx, tab=tab), None, None, queue=False, api_name=f"{tab}_stop")
    return button


def stop_run(request: gr.Request, *, ctx: AppContext, tab: str) -> None:
    """Asks the session's run in `tab` to stop at its next event."""
    ctx.stop_flag(getattr(request, "session_hash", None), tab).set()
