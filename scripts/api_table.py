"""Rewrites the README's API table from the app's own API description: `python scripts/api_table.py`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from tabs.api_docs import api_markdown, replace_section  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        demo = app.build_app(app.make_context(data_dir=data, device="cpu"))
        table = api_markdown(demo.get_api_info())
    readme = ROOT / "README.md"
    readme.write_text(replace_section(readme.read_text(), table))
    print(f"wrote the API table ({table.count(chr(10)) + 1} lines) into {readme}")


if __name__ == "__main__":
    main()
