"""Apps launched exactly as `python app.py` launches them (what is served, auth), for the sharing and hostile-input
tests; visitors are gradio_client Clients (each has its own session hash)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port


@dataclass
class Launched:
    url: str
    ctx: Any
    demo: Any

    def visitor(self, **kwargs: Any) -> Any:
        """A new visitor: a gradio_client Client with its own session."""
        from gradio_client import Client

        return Client(self.url, verbose=False, **kwargs)


@contextmanager
def launched(data_dir: Path, auth: tuple[str, str] | None = None, **context: Any) -> Iterator[Launched]:
    """The app on 127.0.0.1 with app.py's own launch options (`app.launch_options`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import app

    ctx = app.make_context(data_dir=data_dir, device="cpu", max_upload_mb=20, **context)
    demo = app.build_app(ctx)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, auth=auth,
        **app.launch_options(ctx),
    )  # fmt: skip
    try:
        yield Launched(f"http://127.0.0.1:{port}/", ctx, demo)
    finally:
        demo.close()


@pytest.fixture(scope="session")
def safe_app(tmp_path_factory) -> Iterator[Launched]:
    """One app launched as app.py does, shared by the safety tests."""
    with launched(tmp_path_factory.mktemp("safe-data")) as served:
        yield served


@pytest.fixture(scope="session")
def visitor_a(safe_app):
    return safe_app.visitor()


@pytest.fixture(scope="session")
def visitor_b(safe_app):
    return safe_app.visitor()
