"""The API a gradio_client user sees: every endpoint documented in the registry, every parameter and output named,
the README's table generated from it, and the app's --device reaching every run a tab starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pipelines
from tabs.api_docs import api_markdown, endpoint_docs, readme_section

ROOT = Path(__file__).resolve().parents[2]
SHORT = 3  # a parameter named with this many letters or fewer does not say what it is


@pytest.fixture(scope="module")
def api(client) -> dict:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def test_every_documented_endpoint_exists_and_every_endpoint_is_documented(api):
    documented = {f"/{name}" for name in endpoint_docs()}
    served = {name for name in api if not name.endswith("_stop")}
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented in the registry's tabs"
    for entry in pipelines.REGISTRY.values():
        assert entry.api in entry.tab.apis


def test_every_parameter_and_output_is_named(api):
    unnamed = []
    for endpoint, info in api.items():
        for p in info["parameters"]:
            name = p["parameter_name"]
            if re.fullmatch(r"param_\d+", name) or len(name) <= SHORT:
                unnamed.append(f"{endpoint} parameter {name!r}")
        for r in info["returns"]:
            if re.fullmatch(r"value_\d+", r["label"] or "value_0"):
                unnamed.append(f"{endpoint} output {r['label']!r} ({r['component']})")
    assert not unnamed, "\n".join(unnamed)


def test_readme_api_table_is_the_apps(tmp_path):
    import app

    demo = app.build_app(app.make_context(data_dir=tmp_path, device="cpu"))
    readme = (ROOT / "README.md").read_text()
    assert readme_section(readme) == api_markdown(demo.get_api_info()), (
        "the README's API table is stale: run `python scripts/api_table.py` and commit README.md"
    )


def call_arguments(name: str) -> dict:
    """The fewest arguments that start a quick run of pipeline `name` through its endpoint: the tiny preset and
    every other parameter at its default (Inspect has no preset and needs a file; SMPL poses instantly and has none)."""
    from gradio_client import handle_file

    if name == "inspect":
        return {"mesh_files": handle_file(str(ROOT / "assets" / "octahedron.off"))}
    if name == "smpl":
        return {}
    # Their number boxes start at the quick preset's values (what the page shows on a CPU); empty ones take the
    # chosen preset's, so a tiny run stays tiny.
    if name == "giraffe-train":
        return {"preset": "tiny", "steps": None, "batch": None, "n_objects": None}
    if name == "synsin-train":
        return {"preset": "tiny", "steps": None}
    return {"preset": "tiny"}


@pytest.mark.parametrize("name", sorted(pipelines.REGISTRY))
def test_the_app_device_reaches_every_run(name, client, app_server):
    """The app runs on --device cpu here: every run a tab starts is recorded on that device, never 'auto'."""
    _, ctx = app_server
    entry = pipelines.REGISTRY[name]
    if not [r for r in ctx.store.list(pipeline=name) if r.source == "ui"]:
        client.predict(**call_arguments(name), api_name=f"/{entry.api}")
    runs = [r for r in ctx.store.list(pipeline=name) if r.source == "ui"]
    assert runs, f"/{entry.api} recorded no run of {name}"
    assert {r.device for r in runs} == {str(ctx.device)}
