"""Command line: `python -m pipelines <name> --preset tiny|quick|full [--field value ...]`, `--list`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path

from pipelines import REGISTRY, get
from pipelines.core.config import PRESETS, field_docs, make_preset, override
from pipelines.core.ddp import env_rank
from pipelines.core.device import default_preset, resolve_device
from pipelines.core.events import Done, Preview, Progress
from pipelines.core.runner import Run
from pipelines.core.runs import RunStore, default_data_dir
from pipelines.render.book_figures import BookFigure, figure_index


def _pipeline_parser(name: str, config_cls: type) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines {name}",
        description=REGISTRY[name.replace("_", "-")].summary,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        help="tiny (seconds), quick (about a minute on a CPU), full (the book's settings). Default: full on a GPU, quick on a CPU.",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="Where the run store and run outputs live (default $STUDIO_DATA_DIR or ./data)."
    )
    parser.add_argument("--no-record", action="store_true", help="Do not record the run in the run store.")
    parser.add_argument(
        "--figure",
        help="Reproduce one of the book's figures with this pipeline (its number, e.g. 5.2; 'list' lists them).",
    )
    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = getattr(hints[f.name], "__name__", str(hints[f.name]))
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f"field__{f.name}", metavar=kind.upper(), help=docs.get(f.name, "")
        )
    return parser


def _figure(figures: dict[str, BookFigure], number: str | None, name: str) -> BookFigure | None:
    if number is None:
        return None
    if number not in figures:
        known = ", ".join(figures) or "none"
        raise ValueError(f"{name} makes no figure {number!r}; its figures: {known}.")
    return figures[number]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nPipelines:")
        for key, entry in REGISTRY.items():
            print(f"  {key:18s} {entry.summary}")
        print("\n`python -m pipelines <name> --help` lists a pipeline's settings.")
        return 0
    if argv[0] == "--list":
        for key, entry in REGISTRY.items():
            print(f"{key}\t{entry.summary}")
        return 0
    name = argv[0]
    try:
        module = get(name)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 2
    args = vars(_pipeline_parser(name, module.Config).parse_args(argv[1:]))
    fields = {k.removeprefix("field__"): v for k, v in args.items() if k.startswith("field__")}
    figures = figure_index(getattr(module, "FIGURES", ()))
    if args.get("figure") == "list":
        for number, fig in figures.items():
            print(f"{number}\t{fig.title}")
        return 0
    try:
        device = resolve_device(fields.get("device", "auto"))
        preset = args.get("preset") or default_preset(device)
        cfg = make_preset(module.Config, preset)
        figure = _figure(figures, args.get("figure"), name)
        cfg = override(figure.config(cfg) if figure else cfg, fields)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    data_dir = Path(args.get("data_dir") or default_data_dir())
    # Under torchrun only rank 0 records the run and prints progress; the other ranks just compute.
    rank = env_rank()
    say = print if rank == 0 else (lambda *_, **__: None)
    store = None if args.get("no_record") or rank != 0 else RunStore(data_dir)
    run = Run(name, module.run, cfg, store, data_dir / "runs", preset=preset, source="cli")
    say(f"run {run.id}: {name} preset={preset} device={device} out_dir={run.cfg.out_dir}", flush=True)
    start = time.monotonic()
    try:
        for event in run:
            if isinstance(event, Progress):
                losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
                say(
                    f"[{time.monotonic() - start:7.1f}s] {event.step}/{event.total} {losses} {event.message}".rstrip(),
                    flush=True,
                )
            elif isinstance(event, Preview) and event.caption:
                say(f"[{time.monotonic() - start:7.1f}s] preview: {event.caption}", flush=True)
            elif isinstance(event, Done):
                if figure is not None:
                    where = event.files.get(figure.output, "the last preview") if figure.output else "the last preview"
                    say(f"figure {figure.number} ({figure.title}): {where}")
                say(
                    json.dumps(
                        {"metrics": event.metrics, "files": {k: str(v) for k, v in event.files.items()}},
                        indent=2,
                        default=str,
                    )
                )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI reports the failure and exits non-zero
        print(f"error{f' (rank {rank})' if rank else ''}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
