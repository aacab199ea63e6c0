"""What every figure of the reports shares: its size, the models' palette, a new figure, its save.

Figures are plain :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, so no
pyplot state is touched and nothing needs closing. Each PNG is written to a temporary file in the
same folder and moved onto ``path`` (:func:`fibjax.results.storage.atomic_path`), so a killed run
never leaves a half-written image.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fibjax.results import storage

DPI = 150
FIGSIZE = (7.0, 4.5)

# tab10, in order: a model's colour is given by its position (the report passes its place in
# the registry, so a model keeps its colour from figure to figure and from run to run).
PALETTE = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:gray",
)


def model_colour(index: int) -> str:
    """The palette's colour at ``index`` (cycling past its end).

    >>> model_colour(0), model_colour(1), model_colour(10)
    ('tab:blue', 'tab:orange', 'tab:blue')
    """
    return PALETTE[index % len(PALETTE)]


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """A new figure of ``figsize`` inches at :data:`DPI` on the Agg canvas, laid out constrained."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path | str) -> Path:
    """Renders ``fig`` to a temporary PNG beside ``path`` and moves it onto ``path``."""
    path = Path(path)
    try:
        with storage.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI)
    finally:
        fig.clear()
    return path
