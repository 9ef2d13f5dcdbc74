"""The shared tab widgets: configs stamped with the app's settings, handlers bound without losing their API names,
user errors as sentences, preset-following numbers, and uploads given as one file or several."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import gradio as gr
import pytest
import torch

import app
from pipelines.mesh_fit import pipeline as mesh_fit
from pipelines.smpl import pipeline as smpl
from tabs.context import AppContext
from tabs.widgets import bind, config_for, preset_numbers, preset_radio, upload_paths, user_errors


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return app.make_context(data_dir=tmp_path / "data", device="cpu", models_dir=tmp_path / "models", max_upload_mb=7)


def test_config_for_stamps_device_upload_limit_and_models_dir(ctx):
    cfg = config_for(ctx, mesh_fit.Config, "tiny", steps=12, w_edge=None)
    tiny = mesh_fit.Config.tiny()
    assert (cfg.device, cfg.max_upload_mb, cfg.steps) == ("cpu", 7, 12)
    assert cfg.w_edge == tiny.w_edge, "None keeps the preset's value"
    body = config_for(ctx, smpl.Config, None)
    assert body.device == "cpu" and body.models_dir == ctx.models_dir
    assert body == config_for(ctx, smpl.Config, "quick"), "no preset: the device's default (quick on a CPU)"
    with pytest.raises(TypeError):
        config_for(ctx, mesh_fit.Config, "tiny", no_such_field=1)


def test_config_for_uses_the_context_device_not_auto(tmp_path):
    ctx = app.make_context(data_dir=tmp_path, device="cpu")
    ctx.device = torch.device("meta")  # any device the context names reaches the config, whatever the machine has
    assert config_for(ctx, smpl.Config, "tiny").device == "meta"


def _handler(mesh_files: typing.Any, noise_std: float, request: gr.Request, *, ctx: AppContext, extra: int) -> str:
    return f"{mesh_files}-{noise_std}-{extra}"


def _stream(noise_std: float, request: gr.Request | None = None, *, ctx: AppContext) -> typing.Iterator[str]:
    yield from (f"{noise_std}:{i}" for i in range(2))


def test_bind_keeps_the_api_names_the_request_hint_and_streaming():
    plain = bind(_handler, ctx=None, extra=5)
    assert list(inspect.signature(plain).parameters) == ["mesh_files", "noise_std", "request"]
    assert typing.get_type_hints(plain)["request"] is gr.Request
    assert plain("a", 0.5, None) == "a-0.5-5"
    stream = bind(_stream, ctx=None)
    assert inspect.isgeneratorfunction(stream) and list(stream(1.0)) == ["1.0:0", "1.0:1"]
    assert list(inspect.signature(stream).parameters) == ["noise_std", "request"]


def test_user_errors_become_sentences_for_plain_and_streaming_handlers():
    @user_errors("Cannot fit")
    def plain(value: float) -> float:
        if value < 0:
            raise ValueError("The value must be positive.")
        return value

    @user_errors("Cannot fit")
    def streaming(value: float) -> typing.Iterator[float]:
        yield value
        raise ValueError("Ran out of road.")

    assert plain(1.0) == 1.0
    with pytest.raises(gr.Error, match="must be positive"):
        plain(-1.0)
    events = streaming(2.0)
    assert inspect.isgeneratorfunction(streaming) and next(events) == 2.0
    with pytest.raises(gr.Error, match="Ran out of road"):
        next(events)
    assert list(inspect.signature(plain).parameters) == ["value"]


@pytest.mark.parametrize("fields", [("steps",), ("steps", "ico_level")])
def test_preset_numbers_start_at_the_default_preset_and_follow_the_radio(ctx, fields):
    with gr.Blocks() as demo:
        preset = preset_radio(ctx)
        boxes = preset_numbers(ctx, preset, mesh_fit.Config, {f: f for f in fields}, integers=fields)
    quick, tiny = mesh_fit.Config.quick(), mesh_fit.Config.tiny()
    assert [boxes[f].value for f in fields] == [getattr(quick, f) for f in fields]
    follow = next(fn for fn in demo.fns.values() if [b._id for b in fn.inputs] == [preset._id]).fn
    values = follow("tiny")
    expected = [getattr(tiny, f) for f in fields]
    assert (values if len(fields) > 1 else [values]) == expected, "one box gets its value bare, several a list"


def test_upload_paths_take_one_file_a_list_or_nothing(tmp_path):
    path = str(tmp_path / "a.obj")
    assert upload_paths(None) == () and upload_paths([]) == ()
    assert upload_paths(path) == (path,)
    assert upload_paths({"path": path}) == (path,)
    assert upload_paths([{"path": path}, path]) == (path, path)
