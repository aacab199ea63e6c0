"""The sweep's report: ``sweep.csv``, ``summary.json``, figures and ``report.md``, written together.

:func:`write_sweep_report` turns every grid point's MSEs into the rows of
:func:`fibjax.reports.sweep_table.sweep_rows` and writes ``sweep.csv``, ``summary.json``, the
figures (:mod:`fibjax.reports.sweep_plots`) and ``report.md`` together, so a failure leaves the
previous report's files as they were. :func:`build_report` does so from the saved arms of a
finished sweep.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fibjax import stats
from fibjax.reports import sweep_plots
from fibjax.reports.formatting import count, factor_text, fmt
from fibjax.reports.sweep_axes import (
    AXES,
    axis_values,
    check_axes,
    settings_label,
    value_text,
    varying_axes,
)
from fibjax.reports.sweep_table import DECISIONS, PointResult, sweep_rows, write_sweep_csv
from fibjax.results import storage
from fibjax.studies import sweep_results

# The decisions, and the undecided points where nothing could be compared (every seed diverged).
GROUPS = (*DECISIONS, "diverged")
FIGURES = {
    "effect_heatmap": "effect_heatmap.png",
    "effect_by_window": "effect_by_window.png",
    "forest": "forest.png",
}
SWEEP_FORMAT = "fibjax-sweep-report-1"


# ------------------------------------------------------------------------------ the grid


# Each axis in words: singular and plural noun; scaling reads "log scaling", not "scaling log".
_NOUNS = {
    "cell": ("cell", "cells"),
    "model": ("attention form", "attention forms"),
    "hidden": ("hidden size", "hidden sizes"),
    "window": ("window", "windows"),
    "scaling": ("scaling", "scalings"),
    "learning_rate": ("learning rate", "learning rates"),
}


def _join(words: Sequence[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _boxes(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[dict[str, frozenset]]:
    """The rows' settings on ``axes`` merged into products of value sets, each exactly a union
    of rows: two boxes merge on one axis only when they agree on every other axis."""
    boxes = [{axis: frozenset([row[axis]]) for axis in axes} for row in rows]
    changed = True
    while changed:
        changed = False
        for axis in reversed(axes):  # the innermost axes (learning rate, scaling) first
            merged: dict[tuple, dict[str, frozenset]] = {}
            for box in boxes:
                key = tuple(box[a] for a in axes if a != axis)
                if key in merged:
                    merged[key] = {**merged[key], axis: merged[key][axis] | box[axis]}
                    changed = True
                else:
                    merged[key] = box
            boxes = list(merged.values())
    return boxes


def _box_text(box: Mapping[str, frozenset], grid: Mapping[str, list]) -> str:
    parts = []
    for axis, values in box.items():
        ordered = [value_text(axis, v) for v in grid[axis] if v in values]
        singular, plural = _NOUNS[axis]
        if len(ordered) == len(grid[axis]):
            parts.append(f"every {singular} ({', '.join(ordered)})")
        elif axis == "scaling":
            parts.append(f"{_join(ordered)} scaling")
        else:
            noun = singular if len(ordered) == 1 else plural
            parts.append(f"{noun} {_join(ordered, 'or')}")
    return ", ".join(parts)


def decision_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each decision's grid points in words, grouped: ``{decision: [text, ...]}``.

    Undecided points with no seed where both models stayed finite are grouped apart, as
    ``"diverged"``: nothing was compared there.

    Only the axes that vary in the grid are named; points that differ on one axis alone are
    merged ("every window (6, 12, 24)" when they cover all of the grid's values).

    >>> rows = [dict(cell="gru", model="dot", hidden=8, window=w, scaling=s,
    ...              learning_rate=0.01, decision="attention" if s == "log" else "undecided")
    ...         for w in (6, 12) for s in ("minmax", "log")]
    >>> decision_groups(rows)["attention"]
    ['every window (6, 12), log scaling']
    """
    axes = varying_axes(rows)
    grid = {axis: axis_values(rows, axis) for axis in axes}
    out = {}
    for decision in GROUPS:
        mine = [row for row in rows if _group(row) == decision]
        if not axes:
            out[decision] = ["the only grid point"] if mine else []
            continue
        out[decision] = [_box_text(box, grid) for box in _boxes(mine, axes)]
    return out


def _group(row: Mapping[str, Any]) -> str:
    if row["decision"] == "undecided" and row.get("n_pairs", 1) == 0:
        return "diverged"
    return row["decision"]


# ------------------------------------------------------------------------------ Markdown


def correction_text(n_points: int, alpha: float) -> str:
    """The multiple-comparison correction in words."""
    return (
        f"Holm's method over {count(n_points, 'grid point')}, familywise level α = {alpha};"
        " Benjamini–Hochberg q-values also given"
    )


def render_markdown(
    rows: Sequence[Mapping[str, Any]],
    *,
    alpha: float,
    n_seeds: int | tuple[int, int],
    epochs: int | None,
    description: Mapping[str, Any],
    figures: Mapping[str, str],
    code_text: str,
    figure_notes: Sequence[str] = (),
    stats_seed: int | None = None,
    n_resamples: int | None = None,
) -> str:
    """The sweep's report as Markdown, readable on its own.

    Args:
      rows: :func:`fibjax.reports.sweep_table.sweep_rows` (or
        :func:`fibjax.reports.sweep_table.read_sweep_csv`) of every grid point.
      alpha: the familywise level of the Holm-corrected decisions.
      n_seeds: seeds per grid point, or ``(fewest, most)`` when points differ.
      epochs: training epochs of every model (None: not stated).
      description: the sweep's configuration and versions; listed as given.
      figures: ``{name: file}`` of the figures drawn (names of :data:`FIGURES`).
      code_text: what code trained the models, in words.
      figure_notes: why figures were left out.
      stats_seed: seed of the bootstrap and permutation resampling (None: not stated).
      n_resamples: resamples of each bootstrap (None: not stated).

    Returns:
      The Markdown text, ending in a newline.
    """
    parts = [
        _md_head(rows, alpha),
        _md_protocol(rows, alpha, n_seeds, epochs, code_text, stats_seed, n_resamples),
        _md_table(rows),
        _md_figures(figures, figure_notes, alpha),
        _md_configuration(description),
        _md_reproduce(),
    ]
    return "\n\n".join(parts) + "\n"


_HEADINGS = {
    "attention": "Attention has the lower test MSE",
    "vanilla": "Vanilla has the lower test MSE",
    "undecided": "Undecided (no detectable difference)",
    "diverged": "Not compared (no seed where both models stayed finite)",
}


def _md_head(rows: Sequence[Mapping[str, Any]], alpha: float) -> str:
    counts = {d: sum(_group(row) == d for row in rows) for d in GROUPS}
    not_compared = (
        f"; {counts['diverged']} could not be compared, every seed having diverged in one model"
        " or both"
        if counts["diverged"]
        else ""
    )
    fixed = [a for a in AXES if a not in varying_axes(rows)]
    fixed_text = f"\n\nFixed across the grid: {settings_label(rows[0], fixed)}." if fixed else ""
    parts = [
        f"# fibjax sweep: attention against vanilla over {count(len(rows), 'grid point')}\n\n"
        "**Question.** At which settings does an attention pooling lower the test MSE of a"
        " recurrent network predicting the next Fibonacci term, against the same network"
        " reading its last state (vanilla)?\n\n"
        f"**Answer.** Of {count(len(rows), 'grid point')}, attention has the lower test MSE at"
        f" {counts['attention']}, vanilla at {counts['vanilla']}, and {counts['undecided']}"
        f" are undecided{not_compared} ({correction_text(len(rows), alpha)}).{fixed_text}"
    ]
    for decision, texts in decision_groups(rows).items():
        if texts:
            bullets = "\n".join(f"- {text}" for text in texts)
            heading = f"{_HEADINGS[decision]} ({count(counts[decision], 'grid point')})"
            parts.append(f"### {heading}\n\n{bullets}")
    return "\n\n".join(parts)


def _md_protocol(rows, alpha, n_seeds, epochs, code_text, stats_seed, n_resamples) -> str:
    seeds = (
        f"{n_seeds[0]} to {n_seeds[1]} seeds" if isinstance(n_seeds, tuple) else f"{n_seeds} seeds"
    )
    trained = f" trained {epochs} epochs" if epochs is not None else ""
    resampling = []
    if n_resamples is not None:
        resampling.append(f"{n_resamples} resamples")
    if stats_seed is not None:
        resampling.append(f"seed {stats_seed}")
    resampling_text = f" ({', '.join(resampling)})" if resampling else ""
    diverged = sum(row["attention_diverged"] + row["vanilla_diverged"] for row in rows)
    return (
        "## Protocol\n\n"
        "Each grid point compares one attention form with the vanilla model of the same cell,"
        f" hidden size, window, scaling and learning rate, both{trained} under the same {seeds}"
        " (paired by seed). Primary test, named in advance: the two-sided Wilcoxon signed-rank"
        " test on the paired log10 test MSE, one per grid point; the decisions use"
        f" {correction_text(len(rows), alpha)}. A point is decided when its Holm-adjusted p is"
        " below α, for the model that the median over seeds of the paired log10(MSE attention /"
        " MSE vanilla) favours (attention when it is negative); the two models' own median MSEs"
        " in the table may order the other way. Effect size: that median, with a 95% bootstrap"
        " interval (BCa, percentile"
        f" where BCa is undefined){resampling_text}; share of seeds where attention's MSE is"
        f" lower, with a Wilson 95% interval. {count(diverged, 'diverged seed result')} were"
        " left out;"
        f" paired statistics use the seeds where both models stayed finite. {code_text}"
    )


def _md_table(rows: Sequence[Mapping[str, Any]]) -> str:
    axes = varying_axes(rows)
    head = [
        *axes,
        "seeds (pairs)",
        "diverged att / van",
        "median MSE attention",
        "median MSE vanilla",
        "MSE ratio att/van, median [95% CI]",
        "share att lower [95% CI]",
        "p",
        "p Holm",
        "q BH",
        "decision",
    ]
    lines = [
        "## Every grid point\n",
        "÷k: attention's test MSE is k times lower than vanilla's; ×k: k times higher.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(axes) + "---:|" * (len(head) - len(axes) - 1) + "---|",
    ]
    for row in rows:
        decision = row["decision"] if row["decision"] == "undecided" else f"**{row['decision']}**"
        cells = [
            *(value_text(axis, row[axis]) for axis in axes),
            f"{row['n_seeds']} ({row['n_pairs']})",
            f"{row['attention_diverged']} / {row['vanilla_diverged']}",
            fmt(row["attention_median_mse"]),
            fmt(row["vanilla_median_mse"]),
            f"{factor_text(row['median_log10_ratio'])} [{factor_text(row['ratio_ci_low'])},"
            f" {factor_text(row['ratio_ci_high'])}]",
            f"{fmt(row['share_attention_lower'], 2)} [{fmt(row['share_ci_low'], 2)},"
            f" {fmt(row['share_ci_high'], 2)}]",
            fmt(row["p_wilcoxon"]),
            fmt(row["p_holm"]),
            fmt(row["q_bh"]),
            decision,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_figures(figures: Mapping[str, str], notes: Sequence[str], alpha: float) -> str:
    captions = {
        "effect_heatmap": "Median log10 test-MSE ratio (attention/vanilla) over two axes of the"
        f" grid; blue: attention lower; bold with an asterisk: Holm-adjusted p < {alpha}.",
        "effect_by_window": "Median log10 ratio against the window length with its 95% interval,"
        " one line per cell and attention form; filled markers: Holm-adjusted p < α.",
        "forest": "Every grid point sorted by its effect, with its 95% interval; filled markers:"
        " Holm-adjusted p < α.",
    }
    parts = ["## Figures"]
    parts.extend(f"{captions[name]}\n\n![{name}]({file})" for name, file in figures.items())
    parts.extend(f"{note}." for note in notes)
    return "\n\n".join(parts)


def _md_configuration(description: Mapping[str, Any]) -> str:
    lines = ["## Configuration\n"]
    for key, value in description.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"- **{key}**: `{text}`")
    return "\n".join(lines)


def _md_reproduce() -> str:
    return (
        "## Reproduce\n\n"
        "`sweep.csv` holds one row per grid point (settings, counts, medians, effect with its"
        " interval, share lower, raw and corrected p-values, decision; an empty field is a"
        " statistic that could not be computed). `summary.json` holds the same rows, the"
        " configuration and versions as given by the sweep, the statistics' settings and the"
        " decision counts. Every model's per-seed results are saved in the folder's"
        " `arm_*.npz` files with the configuration and code that trained them;"
        " `fibjax report DIR` rebuilds all of this from them, and `fibjax sweep --resume DIR`"
        " trains only what a stopped sweep is missing."
    )


# --------------------------------------------------------------------------- the files


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _check_json(description: Any) -> None:
    if not isinstance(description, Mapping):
        raise ValueError(f"description must be a dict, got {type(description).__name__}")
    try:
        json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"description is not JSON-ready: {error}") from None


def _draw_figures(
    staging: storage.Staging, rows: list[dict[str, Any]], rows_axis: str, cols_axis: str, alpha
) -> tuple[dict[str, str], list[str]]:
    """Draws every figure the rows allow into ``staging``; a note says why one is left out."""
    for file in FIGURES.values():
        staging.remove(file)  # an older figure stays only if drawn again below
    if not any(math.isfinite(row["median_log10_ratio"]) for row in rows):
        return {}, [
            "No figure is drawn: no grid point has a seed where both models stayed finite, so"
            " no effect was estimated"
        ]
    drawn, notes = {}, []
    sweep_plots.effect_heatmap(
        rows,
        rows_axis=rows_axis,
        cols_axis=cols_axis,
        path=staging.path(FIGURES["effect_heatmap"]),
        alpha=alpha,
    )
    drawn["effect_heatmap"] = FIGURES["effect_heatmap"]
    windows = axis_values(rows, "window")
    if len(windows) > 1:
        sweep_plots.effect_by_window(rows, staging.path(FIGURES["effect_by_window"]))
        drawn["effect_by_window"] = FIGURES["effect_by_window"]
    else:
        notes.append(
            f"The effect-by-window figure is not drawn: the grid has one window ({windows[0]})"
        )
    sweep_plots.forest(rows, staging.path(FIGURES["forest"]))
    drawn["forest"] = FIGURES["forest"]
    return drawn, notes


def write_sweep_report(
    out_dir: Path,
    points: Sequence[PointResult],
    *,
    alpha: float,
    stats_seed: int,
    rows_axis: str,
    cols_axis: str,
    description: Mapping[str, Any],
    code_text: str,
    epochs: int | None = None,
    n_resamples: int = stats.StatsConfig.n_resamples,
) -> dict[str, Any]:
    """Writes ``sweep.csv``, ``summary.json``, the figures and ``report.md`` into ``out_dir``.

    Every file is staged and moved in together (:class:`fibjax.results.storage.Staging`): a failure
    leaves the previous report's files as they were. Figures with nothing to show are left
    out (an older one of the same name removed) and the report says why.

    Args:
      out_dir: the folder to write to (created if missing).
      points: every grid point's MSEs.
      alpha: familywise level of the Holm-corrected decisions.
      stats_seed: seed of the resampling statistics.
      rows_axis: the heat map's row axis, one of :data:`AXES`.
      cols_axis: the heat map's column axis, another one.
      description: the sweep's configuration and versions, JSON-ready; kept verbatim in
        ``summary.json``.
      code_text: what code trained the models, in words (for the report).
      epochs: training epochs of every model, for the report (None: not stated).
      n_resamples: resamples of each bootstrap and permutation test.

    Returns:
      The summary written to ``summary.json``: ``format``, ``description``, ``statistics``
      (primary test, correction, family size, α, seed, resamples), ``rows`` (NaN as None),
      ``decisions`` (count of each), ``figures`` (``{name: file}``), ``figure_notes``.

    Raises:
      ValueError: a bad axis, α, seed, description or set of points (one line).
    """
    config = stats.StatsConfig(alpha=alpha, seed=stats_seed, n_resamples=n_resamples)
    check_axes(rows_axis, cols_axis)
    _check_json(description)
    rows = sweep_rows(points, config)
    counts = sorted({row["n_seeds"] for row in rows})
    n_seeds = counts[0] if len(counts) == 1 else (counts[0], counts[-1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with storage.Staging(out_dir) as staging:
        figures, notes = _draw_figures(staging, rows, rows_axis, cols_axis, alpha)
        write_sweep_csv(staging.path("sweep.csv"), rows)
        summary = {
            "format": SWEEP_FORMAT,
            "description": dict(description),
            "statistics": {
                "primary_test": stats.PRIMARY_TEST,
                "correction": "holm",
                "also_given": "benjamini_hochberg",
                "family_size": len(rows),
                **dataclasses.asdict(config),
            },
            "rows": [_jsonable(row) for row in rows],
            "decisions": {d: sum(row["decision"] == d for row in rows) for d in DECISIONS},
            "figures": figures,
            "figure_notes": notes,
        }
        storage.write_json(staging.path("summary.json"), summary)
        markdown = render_markdown(
            rows,
            alpha=alpha,
            n_seeds=n_seeds,
            epochs=epochs,
            description=description,
            figures=figures,
            code_text=code_text,
            figure_notes=notes,
            stats_seed=stats_seed,
            n_resamples=n_resamples,
        )
        storage.write_text(staging.path("report.md"), markdown)
    return summary


def build_report(out_dir: Path) -> dict[str, Any]:
    """Writes ``sweep.csv``, ``summary.json``, the figures and ``report.md`` from the saved
    arms of a finished sweep; returns the summary.

    Raises:
      fibjax.results.storage.ResultFileError: an arm is missing, damaged or disagrees with the
        sweep.
    """
    config, record, arms = sweep_results.load_all(out_dir)
    points = []
    for settings in config.points():
        attention, vanilla = sweep_results.point_mses(config, arms, settings)
        points.append(PointResult(settings, np.asarray(config.seeds), attention, vanilla))
    return write_sweep_report(
        out_dir,
        points,
        alpha=config.alpha,
        stats_seed=config.stats_seed,
        rows_axis=config.rows,
        cols_axis=config.cols,
        description=sweep_results.describe(config, record, arms),
        code_text=sweep_results.code_text(arms),
        epochs=config.epochs,
    )
