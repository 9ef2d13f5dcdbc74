"""The book's figures as data: each capability declares `FIGURES` in its pipeline module, and the CLI
(`--figure N`) and the app's "Reproduce the book's figure" section make any of them from the same pipeline run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BookFigure:
    """One figure of the book and how to make it: run `pipeline` (a registry key) with `settings` over the chosen
    preset; the picture is the run's file `output` (a key of Done.files), or its last preview image when empty."""

    number: str
    """The figure's number in the book ("5.2"), or the chapter and a name where the book does not number it."""
    title: str
    """A short title for menus."""
    book: str
    """What the book shows and how it was made, in our words, shown beside the result."""
    pipeline: str
    """The registry key of the pipeline that makes it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Config fields set over the preset (the book's experiment; sizes stay the preset's unless listed)."""
    output: str = ""
    """The Done.files key of the picture; empty: the last preview image."""

    def config(self, base: Any) -> Any:
        """`base` (a preset of the pipeline's Config) with the figure's settings."""
        return dataclasses.replace(base, **dict(self.settings))


def figure_index(figures: tuple[BookFigure, ...]) -> dict[str, BookFigure]:
    """Figures by number; refuses duplicates (a declaration error)."""
    index: dict[str, BookFigure] = {}
    for fig in figures:
        if fig.number in index:
            raise ValueError(f"Figure {fig.number} is declared twice.")
        index[fig.number] = fig
    return index
