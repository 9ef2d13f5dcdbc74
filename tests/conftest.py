"""Shared fixtures: devices (CPU always, CUDA when present), temp data dirs, and one launched app server."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see pipelines/__init__.py
import torch  # noqa: E402

ARTIFACTS = ROOT / "tests" / "artifacts"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("device") == "cuda":
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The app launched on 127.0.0.1 on a free port, in this process; yields (url, ctx)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import app

    data = tmp_path_factory.mktemp("app-data")
    ctx = app.make_context(data_dir=data, device="cpu", max_upload_mb=20)
    demo = app.build_app(ctx)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **app.launch_options(ctx),
    )
    try:
        yield f"http://127.0.0.1:{port}/", ctx
    finally:
        demo.close()


@pytest.fixture(scope="session")
def client(app_server):
    """One gradio_client Client on the launched app, shared by every test that calls an endpoint."""
    from gradio_client import Client

    url, _ = app_server
    return Client(url, verbose=False)
