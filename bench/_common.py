"""Helpers shared by the CPU benchmarks that measure in one child process per torch thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

THREADS = (2, 1)


def measure_in_child(module: str, threads: int) -> dict:
    """`bench.<module>.measure(threads)` in a fresh interpreter, so each thread count starts from a cold process."""
    code = f"import json; from bench.{module} import measure; print('RESULT ' + json.dumps(measure({threads})))"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"benchmark child failed: {proc.stderr[-2000:]}")


def measure_per_thread_count(module: str) -> list[dict]:
    """Print the load average, then measure in one child per entry of THREADS."""
    print(f"CPU cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}", flush=True)
    return [measure_in_child(module, n) for n in THREADS]


def print_header(title: str, results: list[dict]) -> None:
    """The Markdown table's header: one column per thread count."""
    print(f"| {title} | " + " | ".join(f"{r['threads']} thread(s)" for r in results) + " |")
    print("|" + "---|" * (len(results) + 1))


def print_row(label: str, results: list[dict], cell: Callable[[dict], str]) -> None:
    """One table row: `cell(result)` for each thread count."""
    print(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")


def print_footer(results: list[dict]) -> None:
    """The load average after the runs, and every figure as JSON."""
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(results))
