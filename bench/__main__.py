"""`python -m bench NAME [NAME ...]`: run the named benchmarks (modules of this package) in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pipelines  # noqa: E402, F401 - sets the OpenMP wait policy before torch loads (see pipelines/__init__.py)


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or []
    if not names or names[0] in ("-h", "--help", "--list"):
        print("usage: python -m bench NAME [NAME ...]\nbenchmarks: " + ", ".join(available()))
        return 0
    unknown = [n for n in names if n.replace("-", "_") not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== bench {name}", flush=True)
        importlib.import_module(f"bench.{name.replace('-', '_')}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
