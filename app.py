"""3D Deep Learning Studio: builds the Gradio Blocks from the tab registry; `python app.py` launches it."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

import tabs
from pipelines.core.device import resolve_device
from pipelines.core.runs import RunStore, default_data_dir
from tabs.context import AppContext

CSS = """
.studio-progress { font-size: 0.9em; }
.studio-bar { height: 10px; background: var(--neutral-200); border-radius: 5px; overflow: hidden; }
.studio-fill { height: 100%; background: var(--color-accent); transition: width 0.2s; }
.studio-progress[data-state=done] .studio-fill { background: #2e9d5b; }
.studio-progress[data-state=stopped] .studio-fill { background: #d08b1c; }
.studio-text { margin-top: 4px; }
"""

QUEUE_MAX_SIZE = 32


def build_app(ctx: AppContext) -> gr.Blocks:
    """The whole app: one tab per registry entry, each built by its module's `build(ctx, tab)`."""
    with gr.Blocks(title="3D Deep Learning Studio", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(
            "# 3D Deep Learning Studio\nHands-on 3D deep learning with PyTorch3D: every model trained from scratch, nothing downloaded."
        )
        with gr.Tabs():
            for key, title in tabs.TABS:
                with gr.Tab(title, id=key, elem_id=f"tab-{key}") as tab:
                    tabs.load(key).build(ctx, tab)

        def _end_session(request: gr.Request) -> None:
            ctx.end_session(getattr(request, "session_hash", None))

        demo.unload(_end_session)
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=4)
    return demo


def make_context(
    data_dir: Path | str | None = None,
    device: str = "auto",
    models_dir: Path | str | None = None,
    max_upload_mb: float = 200.0,
) -> AppContext:
    data = Path(data_dir) if data_dir else default_data_dir()
    ctx = AppContext(
        data_dir=data.resolve(),
        device=resolve_device(device),
        store=RunStore(data),
        models_dir=None if models_dir is None else Path(models_dir).resolve(),
        max_upload_mb=max_upload_mb,
    )
    ctx.clean_old_sessions()
    return ctx


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="3D Deep Learning Studio")
    parser.add_argument(
        "--host",
        default=os.environ.get("STUDIO_HOST", "127.0.0.1"),
        help="Interface to listen on (0.0.0.0 to share on a network).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("STUDIO_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="Create a public Gradio share link.")
    parser.add_argument("--auth", default=None, help="user:pass required to open the app.")
    parser.add_argument(
        "--data-dir", default=None, help="Runs database and outputs (default $STUDIO_DATA_DIR or ./data)."
    )
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="Largest upload accepted.")
    parser.add_argument(
        "--models-dir",
        default=os.environ.get("STUDIO_MODELS_DIR"),
        help="Folder of operator-supplied model files (SMPL, checkpoints, Inception weights).",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, or cuda[:N].")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise SystemExit("--auth must look like user:pass")
        auth = (user, password)
    logging.basicConfig(level=logging.INFO)
    ctx = make_context(args.data_dir, args.device, args.models_dir, args.max_upload_mb)
    if ctx.store.recovered:
        logging.info("marked %d interrupted run(s) as failed", ctx.store.recovered)
    demo = build_app(ctx)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=auth,
        max_file_size=f"{args.max_upload_mb:g}mb",
        allowed_paths=[str(ctx.data_dir), str(Path(__file__).resolve().parent / "assets")],
        css=CSS,
    )


if __name__ == "__main__":
    main()
