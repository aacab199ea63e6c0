"""The figures of the comparison report, drawn with Matplotlib.

Every function takes NumPy arrays, writes one PNG to ``path`` and returns ``path``, through
:mod:`fibjax.reports.figures` (plain figures on the Agg canvas, written atomically).

Non-finite values (diverged seeds) are left out of every statistic, and so are values that a log
axis cannot show (zero or negative, and losses or MSEs of ``LOG_AXIS_MAX`` or more); the figures
say how many were left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from fibjax.reports import figures

BAND = (2.5, 97.5)
# Losses and MSEs at or above this are treated like non-finite ones (diverged): Matplotlib's log
# locator overflows on values near 1e300, and no converged run comes close.
LOG_AXIS_MAX = 1e100

TRUTH_COLOUR = "black"
PAIR_COLOUR = "0.55"


def _colours(names: Sequence[str], colours: Mapping[str, str] | None) -> list[str]:
    """Each model's colour: as given, else by its position among ``names``."""
    return [(colours or {}).get(name, figures.model_colour(i)) for i, name in enumerate(names)]


def _labels(names: Sequence[str], labels: Mapping[str, str] | None) -> list[str]:
    return [(labels or {}).get(name, name) for name in names]


def _positive(x: np.ndarray) -> np.ndarray:
    """Mask of finite values > 0."""
    return np.isfinite(x) & (x > 0)


def on_log_axis(x: np.ndarray) -> np.ndarray:
    """Mask of values a Matplotlib log axis can show: finite, > 0 and below ``LOG_AXIS_MAX``.

    >>> on_log_axis(np.array([0.0, 1e-3, np.inf, 1e200])).tolist()
    [False, True, False, False]
    """
    return _positive(x) & (x < LOG_AXIS_MAX)


_on_log_axis = on_log_axis


def _log10_where(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(ok, np.log10(np.where(ok, x, 1.0)), np.nan)


def _decade_ticks(value: float, _pos: int) -> str:
    return f"$10^{{{value:.0f}}}$" if float(value).is_integer() else f"$10^{{{value:g}}}$"


def _as_log_axis(ax: Axes) -> None:
    """Labels an axis that holds ``log10`` of the values as powers of ten.

    Fibonacci numbers reach 1e250, past what Matplotlib's log scale can put ticks on, so those
    panels plot ``log10`` on a linear axis instead.
    """
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(_decade_ticks))


def _column_stats(
    values: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median, band and geometric mean over axis 0 of ``values[valid]``, NaN where none is valid.

    Args:
      values: ``<float>[n, m]``.
      valid: ``<bool>[n, m]`` which entries count.

    Returns:
      ``(median, low, high, geometric_mean)``, each ``<float64>[m]``.
    """
    m = values.shape[1]
    median, low, high, gmean = (np.full(m, np.nan) for _ in range(4))
    some = valid.any(axis=0)
    if some.any():
        cols = np.where(valid[:, some], values[:, some], np.nan).astype(np.float64)
        median[some] = np.nanmedian(cols, axis=0)
        low[some], high[some] = np.nanpercentile(cols, BAND, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            gmean[some] = np.exp(np.nanmean(np.log(cols), axis=0))
    return median, low, high, gmean


def learning_curves(
    losses: Mapping[str, np.ndarray],
    path: Path | str,
    *,
    geometric_mean: bool = True,
    colours: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Training loss by epoch: median over seeds with a 95 % band, on a log axis.

    Values that are not finite, not positive or at least ``LOG_AXIS_MAX`` (diverged seeds) are
    left out epoch by epoch; the legend says how many seeds ever diverged.

    Args:
      losses: per model, ``<float>[n_seeds, epochs]`` the training loss of each seed by epoch.
      path: the PNG to write.
      geometric_mean: also draw the geometric mean over seeds (dashed).
      colours: per model, its colour (default: :data:`fibjax.reports.figures.PALETTE` by
        position).
      labels: per model, its name in the legend (default: the key).

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    fig = figures.new_figure()
    ax = fig.add_subplot()
    names = list(losses)
    for colour, label, raw in zip(
        _colours(names, colours), _labels(names, labels), losses.values(), strict=True
    ):
        loss = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        n_seeds, n_epochs = loss.shape
        valid = _on_log_axis(loss)
        n_diverged = int((~np.isfinite(loss) | (loss >= LOG_AXIS_MAX)).any(axis=1).sum())
        median, low, high, gmean = _column_stats(loss, valid)
        epochs = np.arange(1, n_epochs + 1)
        note = f", {n_diverged} diverged" if n_diverged else ""
        ax.fill_between(epochs, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.plot(
            epochs,
            median,
            color=colour,
            linewidth=2,
            label=f"{label} (median of {n_seeds} seeds{note})",
        )
        if geometric_mean:
            ax.plot(epochs, gmean, color=colour, linewidth=1, linestyle="--")
    ax.fill_between([], [], color="0.3", alpha=0.2, linewidth=0, label="2.5–97.5 % of seeds")
    if geometric_mean:
        ax.plot([], [], color="0.3", linewidth=1, linestyle="--", label="geometric mean of seeds")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss, MSE (scaled units², log scale)")
    ax.set_title("Training loss by epoch over seeds")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncols=1 if len(names) > 2 else 2,
        fontsize="small",
        frameon=False,
    )
    return figures.save(fig, path)


def mse_distributions(
    test_mse: Mapping[str, np.ndarray],
    path: Path | str,
    *,
    baseline: str | None = None,
    colours: Mapping[str, str] | None = None,
) -> Path:
    """Test MSE of each model over seeds: box and points on a log axis, seeds paired by lines.

    A seed's points of neighbouring models are joined by thin grey lines, so each seed is one
    line across the models; the median of each model is marked and written beside it. The title
    says on how many seeds each other model is lower than ``baseline``. Values that are not
    finite (diverged), not positive or at least ``LOG_AXIS_MAX`` are left out, and the title
    says how many.

    Args:
      test_mse: per model, ``<float>[n_seeds]`` the test MSE of each seed; index ``i`` is the same
        seed in every model.
      path: the PNG to write.
      baseline: the model the others are counted against (default: the last).
      colours: per model, its colour (default: :data:`fibjax.reports.figures.PALETTE` by
        position).

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    names = list(test_mse)
    mses = [np.asarray(test_mse[n], dtype=np.float64).ravel() for n in names]
    valids = [_on_log_axis(m) for m in mses]
    rng = np.random.default_rng(0)  # jitter of the points only; fixed so figures are reproducible
    jitter = [rng.uniform(-0.12, 0.12, size=m.size) for m in mses]

    fig = figures.new_figure((max(figures.FIGSIZE[0], 1.9 * len(names) + 1.0), figures.FIGSIZE[1]))
    ax = fig.add_subplot()
    subtitle = []
    if len(names) >= 2:
        for i in range(len(names) - 1):
            segments = _seed_segments(i, mses[i : i + 2], valids[i : i + 2], jitter[i : i + 2])
            if len(segments):
                ax.add_collection(
                    LineCollection(
                        segments, colors=PAIR_COLOUR, linewidths=0.5, alpha=0.35, zorder=1
                    )
                )
        subtitle.append(_lower_counts(names, mses, valids, baseline or names[-1]))
        both = "both models" if len(names) == 2 else "all models"
        ax.plot([], [], color=PAIR_COLOUR, linewidth=0.8, label=f"same seed, {both}")

    left_out = []
    tick_labels = []
    any_data = False
    for i, (name, mse, valid, colour) in enumerate(
        zip(names, mses, valids, _colours(names, colours), strict=True)
    ):
        kept = mse[valid]
        tick_labels.append(f"{name}\n({kept.size} seeds)")
        if kept.size < mse.size:
            left_out.append(f"{name} {mse.size - kept.size} of {mse.size}")
        if kept.size == 0:
            ax.text(
                i,
                0.5,
                "no finite values",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="center",
                color=colour,
            )
            continue
        any_data = True
        ax.boxplot(
            [kept],
            positions=[i],
            widths=0.5,
            showfliers=False,
            showcaps=False,
            whis=(2.5, 97.5),
            patch_artist=True,
            boxprops={"facecolor": colour, "alpha": 0.18, "edgecolor": colour},
            whiskerprops={"color": colour},
            medianprops={"linewidth": 0},
            zorder=2,
        )
        ax.scatter(
            i + jitter[i][valid], kept, s=10, color=colour, alpha=0.6, linewidths=0, zorder=3
        )
        med = float(np.median(kept))
        ax.hlines(med, i - 0.3, i + 0.3, color="black", linewidth=2, zorder=4)
        ax.annotate(
            f"median\n{med:.2e}",
            (i + 0.31, med),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    ax.scatter([], [], s=10, color="0.4", linewidths=0, label="one seed")
    ax.plot([], [], color="black", linewidth=2, label="median of seeds")
    if left_out:
        subtitle.append("left out as diverged: " + ", ".join(left_out))

    if any_data:
        ax.set_yscale("log")
        ax.set_ylabel("test MSE (scaled units², log scale)")
    else:
        ax.set_ylabel("test MSE (scaled units²)")
    ax.set_xticks(range(len(names)), tick_labels)
    ax.set_xlim(-0.6, len(names) - 0.4 + 0.25)
    ax.set_xlabel("model (box: quartiles, whiskers: 2.5–97.5 % of seeds)")
    ax.set_title("\n".join(["Test MSE over seeds", *subtitle]), fontsize="medium")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, fontsize="small", frameon=False
    )
    return figures.save(fig, path)


def _seed_segments(
    left: int, mses: list[np.ndarray], valids: list[np.ndarray], jitter: list[np.ndarray]
) -> np.ndarray:
    """``[n, 2, 2]`` lines joining each seed's points at ``left`` and ``left + 1``."""
    n = min(mses[0].size, mses[1].size)
    idx = np.flatnonzero(valids[0][:n] & valids[1][:n])
    return np.stack(
        [
            np.column_stack([left + jitter[0][idx], mses[0][idx]]),
            np.column_stack([left + 1 + jitter[1][idx], mses[1][idx]]),
        ],
        axis=1,
    )


def _lower_counts(names, mses, valids, baseline: str) -> str:
    """On how many seeds, valid in both, each model's MSE is below the baseline's."""
    b = names.index(baseline)
    counts = []
    for i, name in enumerate(names):
        if i == b:
            continue
        n = min(mses[i].size, mses[b].size)
        idx = np.flatnonzero(valids[i][:n] & valids[b][:n])
        counts.append(f"{name} {int((mses[i][idx] < mses[b][idx]).sum())} of {idx.size}")
    return f"seeds where lower than {baseline}: " + ", ".join(counts)


def attention_by_step(
    alpha: Mapping[str, np.ndarray],
    path: Path | str,
    *,
    colours: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Mean attention weight by time step in the window, over seeds, against uniform attention.

    For each seed the weights are averaged over the test windows; each model's line is the
    median of these means over seeds and its band holds 2.5–97.5 % of seeds. Seeds with
    non-finite weights (diverged) are left out.

    Args:
      alpha: per attention model, ``<float>[n_seeds, n_windows, time]`` its weights on each
        test window, for each seed; every model has the same ``n_windows`` and ``time``.
      path: the PNG to write.
      colours: per model, its colour (default: :data:`fibjax.reports.figures.PALETTE` by
        position).
      labels: per model, its name in the legend (default: the key).

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    arrays = {name: np.asarray(a, dtype=np.float64) for name, a in alpha.items()}
    shapes = {a.shape[1:] for a in arrays.values()}
    if not arrays or any(a.ndim != 3 for a in arrays.values()) or len(shapes) != 1:
        got = [a.shape for a in arrays.values()]
        raise ValueError(f"alpha must be [n_seeds, n_windows, time] for each model, got {got}")
    ((n_windows, time),) = shapes
    steps = np.arange(1, time + 1)
    names = list(arrays)

    fig = figures.new_figure()
    ax = fig.add_subplot()
    left_out = []
    for colour, label, a in zip(
        _colours(names, colours), _labels(names, labels), arrays.values(), strict=True
    ):
        per_seed = a.mean(axis=1)  # [n_seeds, time]
        finite = np.isfinite(per_seed).all(axis=1)
        valid = np.broadcast_to(finite[:, None], per_seed.shape)
        median, low, high, _ = _column_stats(per_seed, valid)
        ax.fill_between(steps, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.plot(
            steps,
            median,
            color=colour,
            linewidth=2,
            marker="o",
            markersize=4,
            label=f"{label} (median over {_seeds(int(finite.sum()))})",
        )
        if not finite.all():
            left_out.append(f"{label} {_seeds(a.shape[0] - int(finite.sum()))}")
    ax.fill_between([], [], color="0.3", alpha=0.15, linewidth=0, label="2.5–97.5 % of seeds")
    ax.axhline(1 / time, color="0.3", linestyle="--", linewidth=1, label=f"uniform, 1/{time}")
    ax.set_xlabel("time step in window (1 = oldest)")
    ax.set_ylabel(f"attention weight α (mean over {n_windows} test windows)")
    note = f"\nleft out as diverged: {', '.join(left_out)}" if left_out else ""
    ax.set_title(f"Where the attention looks in the window{note}")
    ax.set_xticks(_step_ticks(time))
    ax.set_xlim(0.5, time + 0.5)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figures.save(fig, path)


def attention_heatmap(
    alpha: np.ndarray, positions: np.ndarray, path: Path | str, *, title_suffix: str = ""
) -> Path:
    """Attention weights of one trained model on every test window, rows ordered by position.

    Rows are the test windows sorted by the position of their target in the sequence. Positions
    not in the test set are skipped, so rows are evenly spaced and each y tick, a round position,
    sits between the rows of the test positions around it. Non-finite weights are drawn grey.

    Args:
      alpha: ``<float>[n_windows, time]`` the weights of one seed's model on each test window.
      positions: ``<int>[n_windows]`` position of each window's target in the sequence.
      path: the PNG to write.
      title_suffix: appended to the title, e.g. ``" (seed 3, median test MSE)"``.

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    positions = np.asarray(positions).ravel()
    if alpha.ndim != 2 or alpha.shape[0] != positions.size:
        raise ValueError(
            f"alpha must be [n_windows, time] with n_windows = {positions.size} positions, got"
            f" shape {alpha.shape}"
        )
    n_windows, time = alpha.shape
    order = np.argsort(positions, kind="stable")
    image = np.ma.masked_invalid(alpha[order])
    sorted_pos = positions[order]

    fig = figures.new_figure()
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    vmax = float(image.max()) if image.count() else 1.0
    im = ax.imshow(
        image,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap=cmap,
        vmin=0.0,
        vmax=vmax,
        extent=(0.5, time + 0.5, -0.5, n_windows - 0.5),
    )
    cbar = fig.colorbar(im, ax=ax)
    if 0 < 1 / time < vmax:
        cbar.ax.axhline(1 / time, color="white", linestyle="--", linewidth=1.5)
        cbar.set_label(f"attention weight α (dashed: uniform, 1/{time})")
    else:
        cbar.set_label("attention weight α")

    if n_windows:
        # Rows are evenly spaced but positions are not: tick round positions at the height
        # interpolated between the rows of the neighbouring test positions.
        first, last = float(sorted_pos[0]), float(sorted_pos[-1])
        ticks = MaxNLocator(nbins=8, integer=True).tick_values(first, last)
        ticks = ticks[(ticks >= first) & (ticks <= last)]
        rows = np.interp(ticks, sorted_pos.astype(np.float64), np.arange(n_windows))
        ax.yaxis.set_major_locator(FixedLocator(rows))
        ax.set_yticklabels([f"{t:.0f}" for t in ticks])
    ax.set_xticks(_step_ticks(time))
    ax.set_xlabel("time step in window (1 = oldest)")
    ax.set_ylabel(f"position of target term in sequence\n({n_windows} test windows, sorted)")
    ax.set_title(f"Attention weights on each test window{title_suffix}")
    return figures.save(fig, path)


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _step_ticks(time: int) -> np.ndarray:
    """Ticks of the time-step axis: every step up to 25 steps, else round ones within 1..time."""
    if time <= 25:
        return np.arange(1, time + 1)
    ticks = MaxNLocator(integer=True).tick_values(1, time)
    return ticks[(ticks >= 1) & (ticks <= time)]


def _fibonacci_panel_data(values: np.ndarray, to_fibonacci: Callable) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(to_fibonacci(values), dtype=np.float64)


def predictions(
    positions: np.ndarray,
    truth: np.ndarray,
    predicted: Mapping[str, np.ndarray],
    to_fibonacci: Callable[[np.ndarray], np.ndarray],
    path: Path | str,
    *,
    colours: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Test-window predictions against the truth: scaled, in Fibonacci numbers, relative error.

    Three panels share the x axis, the position of each test target in the sequence (sorted):
    (a) scaled values, (b) Fibonacci numbers on a log axis, (c) relative error
    ``|pred − truth| / truth`` in Fibonacci numbers on a log axis. The log panels plot ``log10``
    with ticks labelled as powers of ten, since the terms reach 1e250, past what Matplotlib's log
    scale can tick. Values a log axis cannot show (non-positive or non-finite, or a zero truth)
    are left out and counted in the legend.

    Args:
      positions: ``<int>[n]`` position of each test target in the sequence.
      truth: ``<float>[n]`` the scaled targets.
      predicted: per model, ``<float>[n]`` its scaled predictions (one seed).
      to_fibonacci: maps scaled values, any shape, to Fibonacci numbers (float64).
      path: the PNG to write.
      colours: per model, its colour (default: :data:`fibjax.reports.figures.PALETTE` by
        position).
      labels: per model, its name in panel (a)'s legend (default: the key).

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    positions = np.asarray(positions).ravel()
    order = np.argsort(positions, kind="stable")
    x = positions[order]
    truth_s = np.asarray(truth, dtype=np.float64).ravel()[order]
    truth_f = _fibonacci_panel_data(truth_s, to_fibonacci)
    truth_ok = _positive(truth_f)

    fig = figures.new_figure((7.0, 8.5))
    ax_s, ax_f, ax_e = fig.subplots(3, 1, sharex=True)
    axes: tuple[Axes, Axes, Axes] = (ax_s, ax_f, ax_e)

    ax_s.plot(x, truth_s, color=TRUTH_COLOUR, linewidth=1.5, label="truth")
    ax_f.plot(x, _log10_where(truth_f, truth_ok), color=TRUTH_COLOUR, linewidth=1.5, label="truth")
    names = list(predicted)
    for name, colour, label, raw in zip(
        names, _colours(names, colours), _labels(names, labels), predicted.values(), strict=True
    ):
        pred_s = np.asarray(raw, dtype=np.float64).ravel()[order]
        pred_f = _fibonacci_panel_data(pred_s, to_fibonacci)
        style = {"color": colour, "linewidth": 1.0, "marker": ".", "markersize": 3, "alpha": 0.85}
        ax_s.plot(x, pred_s, label=label, **style)

        ok_f = _positive(pred_f)
        hidden = pred_f.size - int(ok_f.sum())
        note = f" ({hidden} ≤ 0 not shown)" if hidden else ""
        ax_f.plot(x, _log10_where(pred_f, ok_f), label=f"{name}{note}", **style)

        with np.errstate(all="ignore"):
            rel = np.abs(pred_f - truth_f) / truth_f
        ok_e = truth_ok & _positive(rel)
        hidden = rel.size - int(ok_e.sum())
        note = f" ({hidden} not shown: exact, non-finite or zero truth)" if hidden else ""
        ax_e.plot(x, _log10_where(rel, ok_e), label=f"{name}{note}", **style)

    ax_e.axhline(0.0, color="0.3", linestyle=":", linewidth=1, label="100 % error")
    ax_s.set_ylabel("scaled value\n(min-max, 0–1)")
    ax_f.set_ylabel("Fibonacci number\n(log scale)")
    ax_e.set_ylabel("relative error\n|pred − truth| / truth\n(log scale)")
    ax_e.set_xlabel("position of target term in sequence (test windows)")
    for ax, title in zip(
        axes,
        (
            "(a) scaled prediction vs truth",
            "(b) in Fibonacci numbers",
            "(c) relative error in Fibonacci numbers",
        ),
        strict=True,
    ):
        ax.set_title(title, loc="left", fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", loc="best")
    _as_log_axis(ax_f)
    _as_log_axis(ax_e)
    fig.suptitle("Next-term predictions on the test windows (one seed per model)")
    return figures.save(fig, path)
