"""3D Deep Learning Studio: builds the Gradio Blocks from the tab registry; `python app.py` launches it."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path
from typing import Any

import gradio as gr

import tabs
from pipelines.core.device import resolve_device
from pipelines.core.paths import ASSETS_DIR, DataDirError, check_data_dir
from pipelines.core.runs import RunStore, default_data_dir
from tabs import book
from tabs.context import SECRET_NAME, AppContext

CSS = """
.studio-progress { font-size: 0.9em; }
.studio-bar { height: 10px; background: var(--neutral-200); border-radius: 5px; overflow: hidden; }
.studio-fill { height: 100%; background: var(--color-accent); transition: width 0.2s; }
.studio-progress[data-state=done] .studio-fill { background: #2e9d5b; }
.studio-progress[data-state=stopped] .studio-fill { background: #d08b1c; }
.studio-text { margin-top: 4px; }
.studio-headline { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 22px; padding: 10px 14px;
  border: 1px solid var(--border-color-accent); border-radius: 8px;
  background: color-mix(in srgb, var(--color-accent) 7%, var(--background-fill-primary)); }
.studio-headline-value { font-size: 1.6em; margin: 0 2px; }
.studio-headline-from, .studio-headline-time { color: var(--body-text-color-subdued); }
.studio-headline-time { margin-left: auto; }
.studio-stop { flex-grow: 0 !important; min-width: 80px !important; }
/* Stop reads as disabled unless a run panel of its tab shows a run going */
.tabitem:not(:has(.studio-progress[data-state=running])) .studio-stop { opacity: 0.45; pointer-events: none; }
.studio-tile { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px; }
.studio-thumb img { object-fit: cover; border-radius: 6px; }
/* results hidden while they show Gradio's empty placeholder (kept in the page: see tabs/viewer.py) */
.studio-hide-empty:has(> [aria-label="Empty value"]) { display: none !important; }
"""

REFLOW_JS = "() => { setTimeout(() => window.dispatchEvent(new Event('resize')), 60); }"
"""Browser code run when a tab is opened: a resize event, so plots drawn at another window width fit again."""
QUEUE_MAX_SIZE = 32
DEFAULT_QUOTA_MB = 2048.0
"""Disk a visitor's run folders may take before their next run is refused (--quota-mb)."""
DEFAULT_MIN_FREE_MB = 500.0
"""Free disk the studio keeps: below it no run starts, and the app does not start (--min-free-mb)."""
DEFAULT_EXPIRE_HOURS = 72.0
"""Visitors' uploads and outputs are removed this long after their run ended (--expire-hours; 0 = never)."""


def build_app(ctx: AppContext) -> gr.Blocks:
    """The whole app: one tab per registry entry, each built by its module's `build(ctx, tab)`."""
    with gr.Blocks(title="3D Deep Learning Studio", delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown(
            "# 3D Deep Learning Studio\nHands-on 3D deep learning with PyTorch3D: every model trained from scratch, nothing downloaded."
        )
        with gr.Tabs(overflow_behavior="wrap"):  # every tab in sight at 800 px, none behind a "⋯" menu
            for key, title in tabs.TABS:
                with gr.Tab(title, id=key, elem_id=f"tab-{key}") as tab:
                    tabs.load(key).build(ctx, tab)
                    book.section(ctx, key)  # "Reproduce the book's figure", from the tab's pipelines' FIGURES
                # Plotly resizes its plots on a window resize, but not those in a hidden tab: reflow on select
                tab.select(None, None, None, js=REFLOW_JS, api_name=False, queue=False)

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
    *,
    shared_runs: bool = False,
    quota_mb: float | None = DEFAULT_QUOTA_MB,
    min_free_mb: float = DEFAULT_MIN_FREE_MB,
    expire_hours: float = DEFAULT_EXPIRE_HOURS,
) -> AppContext:
    """The app's shared state over a checked data dir (`DataDirError` with a sentence when it cannot hold runs)."""
    data = check_data_dir(Path(data_dir) if data_dir else default_data_dir(), min_free_mb)
    ctx = AppContext(
        data_dir=data,
        device=resolve_device(device),
        store=RunStore(data, quota_mb=quota_mb or None, min_free_mb=min_free_mb),
        models_dir=None if models_dir is None else Path(models_dir).resolve(),
        max_upload_mb=max_upload_mb,
        shared_runs=shared_runs,
        expire_s=expire_hours * 3600 if expire_hours > 0 else None,
    )
    if ctx.expire_s is not None:
        ctx.session_max_age_s = min(ctx.session_max_age_s, ctx.expire_s)
    ctx.expire_old()
    return ctx


def launch_options(ctx: AppContext, max_upload_mb: float | None = None) -> dict[str, Any]:
    """What `launch()` may serve: the sessions' folders (named by a keyed hash) and the shipped assets, never the
    data dir as a whole; the run store and the key are blocked outright."""
    blocked = [
        ctx.data_dir / SECRET_NAME,
        ctx.store.path,
        *(ctx.store.path.with_name(ctx.store.path.name + s) for s in ("-wal", "-shm")),
    ]
    ctx.sessions_dir.mkdir(parents=True, exist_ok=True)
    return {
        "max_file_size": f"{max_upload_mb or ctx.max_upload_mb:g}mb",
        "allowed_paths": [str(ctx.sessions_dir), str(ASSETS_DIR)],
        "blocked_paths": [str(p) for p in blocked],
        "css": CSS,
    }


def expire_periodically(ctx: AppContext, every_s: float = 3600.0) -> threading.Thread:
    """A daemon thread that removes expired uploads, outputs and session folders every `every_s` seconds."""

    def loop() -> None:
        while not stop.wait(every_s):
            try:
                ctx.expire_old()
            except OSError as err:  # a clean-up that fails once is tried again at the next round
                logging.warning("expiry failed: %s", err)

    stop = threading.Event()
    thread = threading.Thread(target=loop, name="studio-expiry", daemon=True)
    thread.start()
    return thread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="3D Deep Learning Studio")
    parser.add_argument(
        "--host",
        default=os.environ.get("STUDIO_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        help="Interface to listen on (0.0.0.0 to share on a network; $STUDIO_HOST or $GRADIO_SERVER_NAME).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("STUDIO_PORT") or os.environ.get("GRADIO_SERVER_PORT") or "7860"),
        help="Port ($STUDIO_PORT or $GRADIO_SERVER_PORT).",
    )
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
    parser.add_argument(
        "--shared-runs", action="store_true", help="Every visitor sees every run (a trusted team's one history)."
    )
    parser.add_argument(
        "--quota-mb",
        type=float,
        default=DEFAULT_QUOTA_MB,
        help="Disk a visitor's runs may take before new runs are refused (0 = no quota).",
    )
    parser.add_argument(
        "--min-free-mb",
        type=float,
        default=DEFAULT_MIN_FREE_MB,
        help="Free disk kept: below it no run starts and the app does not start.",
    )
    parser.add_argument(
        "--expire-hours",
        type=float,
        default=DEFAULT_EXPIRE_HOURS,
        help="Visitors' uploads and outputs are removed this long after their run (0 = never).",
    )
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
    try:
        ctx = make_context(
            args.data_dir,
            args.device,
            args.models_dir,
            args.max_upload_mb,
            shared_runs=args.shared_runs,
            quota_mb=args.quota_mb,
            min_free_mb=args.min_free_mb,
            expire_hours=args.expire_hours,
        )
    except (DataDirError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    if ctx.store.recovered:
        logging.info("marked %d interrupted run(s) as failed", ctx.store.recovered)
    if ctx.expire_s is not None:
        expire_periodically(ctx, every_s=min(3600.0, ctx.expire_s / 4))
    demo = build_app(ctx)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth, **launch_options(ctx))


if __name__ == "__main__":
    main()
