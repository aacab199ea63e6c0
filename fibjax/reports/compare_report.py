"""The comparison's report: statistics, verdict, figures and ``report.md``, from saved files alone.

:func:`fibjax.reports.compare_tables.write_tables` turns the saved arms into ``results.csv`` and
``curves.npz``; :func:`build_report` reads those back (with the saved parameters' predictions and
attention weights) and writes ``summary.json``, the figures and ``report.md``. ``fibjax report
DIR`` runs :func:`build_report` alone, so it gives the same statistics as the run did.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fibjax.data import FibonacciData, describe, windows_from_config
from fibjax.models import MODEL_NAMES, cell_entry, describe_model
from fibjax.reports import compare_plots as plots
from fibjax.reports.compare_tables import load_results, stats_input
from fibjax.reports.figures import model_colour
from fibjax.reports.formatting import fmt
from fibjax.results import provenance, storage
from fibjax.stats import Comparison, StatsConfig, compare_family
from fibjax.studies.compare import RUN_FORMAT, CompareConfig, arm_code, run_codes

FIGURES = {
    "learning_curves": "learning_curves.png",
    "test_mse": "test_mse.png",
    "attention_by_step": "attention_by_step.png",
    "attention_heatmap": "attention_heatmap.png",
    "predictions": "predictions.png",
}


def median_seed_index(test_mse: np.ndarray) -> int | None:
    """Index of the seed with the median test MSE among finite ones (lower middle)."""
    finite = np.flatnonzero(np.isfinite(test_mse))
    if finite.size == 0:
        return None
    order = finite[np.argsort(test_mse[finite], kind="stable")]
    return int(order[(order.size - 1) // 2])


def build_report(out_dir: Path) -> dict[str, Any]:
    """Writes ``summary.json``, the figures and ``report.md`` from the saved files of a run.

    Args:
      out_dir: a finished run's folder (``run.json``, ``results.csv``, ``curves.npz`` and
        ``arm_*.npz``).

    Returns:
      The summary written to ``summary.json``.

    Raises:
      fibjax.results.storage.ResultFileError: a file is missing, truncated or not fibjax's.
    """
    out_dir = Path(out_dir)
    config, record, tables, curves, arms = load_results(out_dir)
    environment = record["environment"]
    data = windows_from_config(config.data)
    labels = [label for label, _, _ in config.arms()]
    comparisons = compare_family(
        {label: stats_input(tables[label]) for label in config.candidates()},
        stats_input(tables[config.baseline()]),
        StatsConfig(alpha=config.alpha, seed=config.stats_seed),
        baseline_name=config.baseline(),
    )
    verdicts = {label: verdict(c, config) for label, c in comparisons.items()}
    # Every output is written first and moved in last: a report that fails half-way leaves
    # the previous report's files as they were.
    with storage.Staging(out_dir) as staging:
        figures, figure_notes = draw_figures(staging, config, data, tables, curves, arms)
        summary = {
            "format": RUN_FORMAT,
            "config": config.to_dict(),
            "models": {label: model_text(config, model) for label, model, _ in config.arms()},
            "comparisons": {label: c.to_dict() for label, c in comparisons.items()},
            "verdicts": verdicts,
            "verdict": "\n".join(
                f"- {text}" if len(verdicts) > 1 else text for text in verdicts.values()
            ),
            "arms": {label: arm_summary(tables[label], arms[label]) for label in labels},
            "data": data_summary(data, arms[labels[0]], tables[labels[0]]),
            "environment": environment,
            "code": code_summary(record, arms),
            "figures": figures,
            "figure_notes": figure_notes,
        }
        storage.write_json(staging.path("summary.json"), summary)
        markdown = render_markdown(summary, config, comparisons)
        storage.write_text(staging.path("report.md"), markdown)
    return summary


def model_text(config: CompareConfig, model: str) -> str:
    """A model of the run in words: its cell, hidden size and pooling."""
    return describe_model(model, config.cell, config.hidden)


def model_colours(config: CompareConfig) -> dict[str, str]:
    """Each arm's colour: by the model's place in the registry, so it is the same in every run
    (in A/A mode, where both arms are one model, by the arm's place)."""
    if config.aa:
        return {label: model_colour(i) for i, (label, _, _) in enumerate(config.arms())}
    return {label: model_colour(MODEL_NAMES.index(m)) for label, m, _ in config.arms()}


def code_summary(record: dict[str, Any], arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The code each arm was trained under, and whether the run allowed a change of code."""
    codes = {label: arm_code(arm) for label, arm in arms.items()}
    return {
        "arms": codes,
        "mixed": any(code != record["code"] for code in codes.values()),
        "allowed_changes": len(run_codes(record)) - 1,
    }


def redraw_figures(out_dir: Path) -> dict[str, str]:
    """Draws the figures of a finished run again from its saved files; returns ``{name: file}``."""
    out_dir = Path(out_dir)
    config, _, tables, curves, arms = load_results(out_dir)
    with storage.Staging(out_dir) as staging:
        drawn, _ = draw_figures(
            staging, config, windows_from_config(config.data), tables, curves, arms
        )
    return drawn


def arm_summary(table: dict[str, np.ndarray], arm: dict[str, Any]) -> dict[str, Any]:
    """Seeds, divergence and timings of one arm."""
    diverged = table["diverged_epoch"] > 0
    return {
        "model": str(arm["model"]),
        "n_seeds": int(table["seeds"].size),
        "n_diverged": int(diverged.sum()),
        "diverged_seeds": {
            str(s): int(e)
            for s, e in zip(table["seeds"], table["diverged_epoch"], strict=True)
            if e
        },
        "compile_s": float(arm["compile_s"]),
        "train_s": float(arm["train_s"]),
    }


def data_summary(data: FibonacciData, arm: dict[str, Any], table: dict) -> dict[str, Any]:
    """What the MSE measures, with the first arm's median seed as the trained model."""
    index = median_seed_index(stats_input(table))
    predictions = None if index is None else arm["test_pred"][index]
    info = describe(data, predictions)
    info.pop("test_mse_share", None)
    info["median_seed"] = None if index is None else int(table["seeds"][index])
    return info


def draw_figures(
    staging: storage.Staging, config, data, tables, curves, arms
) -> tuple[dict[str, str], list[str]]:
    """Draws every figure the run's arms allow into ``staging``.

    A figure with nothing to show (every training loss zero, as with a tiny training split,
    or no finite test MSE) is left out, and a note says why; an older file of it is removed
    when the staging commits, so no figure of another run stays beside the report.

    Returns:
      ``({name: file}, notes)``.
    """
    labels = [label for label, _, _ in config.arms()]
    style = {
        "colours": model_colours(config),
        "labels": {label: f"{label}: {model_text(config, m)}" for label, m, _ in config.arms()},
    }
    drawn, notes = {}, []
    for name in FIGURES:
        staging.remove(FIGURES[name])  # kept only if drawn again below
    if any(plots.on_log_axis(np.asarray(c, np.float64)).any() for c in curves.values()):
        plots.learning_curves(curves, staging.path(FIGURES["learning_curves"]), **style)
        drawn["learning_curves"] = FIGURES["learning_curves"]
    else:
        notes.append(
            "The learning curves are not drawn: no training loss is positive and finite, so a"
            " log axis has nothing to show"
        )
    mse = {label: stats_input(tables[label]) for label in labels}
    if any(plots.on_log_axis(values).any() for values in mse.values()):
        plots.mse_distributions(
            mse,
            staging.path(FIGURES["test_mse"]),
            baseline=config.baseline(),
            colours=style["colours"],
        )
        drawn["test_mse"] = FIGURES["test_mse"]
    else:
        notes.append("The test MSE figure is not drawn: no seed has a positive, finite test MSE")
    medians = {label: median_seed_index(mse[label]) for label in labels}
    attention = [label for label in labels if "test_alpha" in arms[label]]
    if attention and any(medians[label] is not None for label in attention):
        alpha = {label: arms[label]["test_alpha"] for label in attention}
        plots.attention_by_step(alpha, staging.path(FIGURES["attention_by_step"]), **style)
        drawn["attention_by_step"] = FIGURES["attention_by_step"]
        # The heat map of one model: the first attention form with a finite test MSE.
        first = next(label for label in attention if medians[label] is not None)
        seed = tables[first]["seeds"][medians[first]]
        plots.attention_heatmap(
            alpha[first][medians[first]],
            data.test_index,
            staging.path(FIGURES["attention_heatmap"]),
            title_suffix=f"\n{style['labels'][first]}, median seed {seed}",
        )
        drawn["attention_heatmap"] = FIGURES["attention_heatmap"]
    predicted = {
        label: arms[label]["test_pred"][i] for label, i in medians.items() if i is not None
    }
    if predicted:
        plots.predictions(
            data.test_index,
            data.test_y,
            predicted,
            data.to_fibonacci,
            staging.path(FIGURES["predictions"]),
            **style,
        )
        drawn["predictions"] = FIGURES["predictions"]
    return drawn, notes


def _ratio_text(log10_ratio: float) -> str:
    """``10**log10_ratio`` as "3.2 times lower/higher"."""
    factor = 10 ** abs(log10_ratio)
    return f"{factor:.2g} times {'lower' if log10_ratio < 0 else 'higher'}"


def _p_text(comparison: Comparison) -> str:
    """The primary p-value, with the Holm-adjusted one when the comparison is one of several."""
    p = comparison.paired["wilcoxon"]["pvalue"]
    adjustment = comparison.adjustment
    if adjustment is None:
        return f"p = {p:.3g}"
    return (
        f"p = {p:.3g}, {adjustment['method'].capitalize()}-adjusted p ="
        f" {fmt(adjustment['pvalue'])} over {adjustment['family_size']} comparisons"
    )


def verdict(comparison: Comparison, config: CompareConfig) -> str:
    """The plain-language answer of one comparison, as it opens the report."""
    a, b = comparison.names
    paired = comparison.paired
    p = paired["wilcoxon"]["pvalue"]
    ratio = paired["median_log10_ratio"]
    wins = paired["prob_a_wins"]
    if p is None or not math.isfinite(p):
        return (
            f"Not decidable: only {comparison.n_pairs} seeds have a finite test MSE under both"
            f" {a} and {b}."
        )
    low, high = ratio["ci"]["low"], ratio["ci"]["high"]
    ci = "" if low is None else f" (95% interval {10**low:.2g}× to {10**high:.2g}×)"
    size = (
        f"the median seed's test MSE ratio {a}/{b} is {10 ** ratio['estimate']:.2g}{ci};"
        f" {a} has the lower test MSE on {wins['wins']} of {wins['n']} seeds"
    )
    if comparison.decision == "undecided":
        head = (
            f"No detectable difference between {a} and {b} at α = {config.alpha}: the paired"
            f" Wilcoxon test on log10 test MSE gives {_p_text(comparison)}; {size}."
        )
    else:
        better, worse = (a, b) if comparison.decision == "a_better" else (b, a)
        head = (
            f"{better} has the lower test MSE: {_ratio_text(-abs(ratio['estimate']))} than"
            f" {worse} for the median pair (paired Wilcoxon test on log10 test MSE,"
            f" {_p_text(comparison)}, α = {config.alpha}); {size}."
        )
    return head + " " + _enough_seeds(comparison)


def _enough_seeds(comparison: Comparison) -> str:
    power = comparison.power
    needed, n = power["n_required_wilcoxon"], comparison.n_pairs
    achieved = power["achieved_power_wilcoxon"]
    if needed is None:
        return "The observed effect is zero, so no number of seeds would detect it."
    have = "" if achieved is None else f" (power now about {achieved:.0%})"
    if needed <= n:
        return f"{n} seeds were enough: about {needed} detect this effect with 80% power{have}."
    return (
        f"{n} seeds were not enough to detect an effect this small reliably{have}: about"
        f" {needed} would give 80% power."
    )


def _ci(interval: dict[str, Any]) -> str:
    return f"[{fmt(interval['low'])}, {fmt(interval['high'])}]"


def render_markdown(
    summary: dict[str, Any], config: CompareConfig, comparisons: dict[str, Comparison]
) -> str:
    """The report as Markdown, readable on its own."""
    parts = [
        _md_head(summary, config, comparisons),
        _md_protocol(config, summary, comparisons),
        _md_mse_meaning(summary["data"]),
        _md_models(summary, config, comparisons),
        _md_tests(comparisons),
        _md_figures(summary["figures"], summary.get("figure_notes", [])),
        _md_reproduce(config),
    ]
    return "\n\n".join(parts) + "\n"


def _md_head(
    summary: dict[str, Any], config: CompareConfig, comparisons: dict[str, Comparison]
) -> str:
    cell = f"{cell_entry(config.cell).label}({config.hidden})"
    candidates = ", ".join(comparisons)
    if config.aa:
        question = (
            "Is the statistics' false-positive rate where it should be? (A/A: one model against"
            " itself on disjoint seeds)"
        )
    else:
        question = (
            f"Does attention help a recurrent network, {cell}, predict the next Fibonacci term?"
        )
    heading = "**Verdict.** "
    if len(comparisons) > 1:
        heading = (
            f"**Verdicts** (each attention form against {config.baseline()}; primary p-values"
            f" Holm-adjusted over {len(comparisons)} comparisons):\n\n"
        )
    return (
        f"# fibjax comparison: {candidates} vs {config.baseline()}, {cell}\n\n"
        f"**Question.** {question}\n\n{heading}{summary['verdict']}"
    )


def _md_protocol(
    config: CompareConfig, summary: dict[str, Any], comparisons: dict[str, Comparison]
) -> str:
    d = config.data
    env = summary["environment"]
    seeds = config.seeds
    seed_text = f"{len(seeds)} seeds ({seeds[0]}…{seeds[-1]})" if len(seeds) > 3 else str(seeds)
    arms = ", ".join(f"{k}: {v['train_s']:.1f} s" for k, v in summary["arms"].items())
    models = ", ".join(f"{label} ({text})" for label, text in summary["models"].items())
    cell = cell_entry(config.cell).label
    if config.aa:
        design = (
            f" {seed_text} for the first arm and as many after them for the second (disjoint"
            " seeds, so no pairing)."
        )
    else:
        design = (
            f" {seed_text}; under one seed every model starts from the same recurrent and output"
            " weights and sees the windows in the same order (paired design)."
        )
    family = (
        f" Each of {', '.join(comparisons)} is compared with {config.baseline()}; the primary"
        f" p-values are Holm-adjusted over the {len(comparisons)} comparisons."
        if len(comparisons) > 1
        else ""
    )
    return (
        "## Protocol\n\n"
        f"The notebook's task: windows of {d.window} terms of the first {d.n_terms} Fibonacci"
        f" numbers, {d.scaling} scaling, {d.train_fraction:.0%} of the windows for training"
        f" (split seed {d.split_seed}). Each model is one {cell} layer of {config.hidden} units, a"
        f" pooling of its states and Dense(1, tanh): {models}. Each trains {config.epochs}"
        f" epochs at batch size {config.batch_size},"
        f" {config.optimizer} at learning rate {config.learning_rate}, MSE loss, a fresh"
        f" shuffle each epoch.{design}{family} {_md_code(summary['code'])} on"
        f" {_device_text(env)}; training took {arms}."
    )


def _md_code(code: dict[str, Any]) -> str:
    """What code trained the models; says so when a resume mixed versions."""
    texts = {label: provenance.code_line(arm) for label, arm in code["arms"].items()}
    if len(set(texts.values())) == 1 and not code["mixed"]:
        return f"Trained with {next(iter(texts.values()))}"
    each = "; ".join(f"{label} with {text}" for label, text in texts.items())
    return (
        "**The code changed while this run was interrupted** (resumed with"
        f" --allow-version-change): {each}"
    )


def _device_text(env: dict[str, Any]) -> str:
    device = env.get("device")
    if not isinstance(device, dict):
        return "an unrecorded device"
    return (
        f"{device.get('device_count', '?')} {device.get('backend', '?')} device(s)"
        f" ({device.get('device_kind', '?')})"
    )


def _md_mse_meaning(info: dict[str, Any]) -> str:
    share = info.get("test_mse_share_above_resolution")
    share_text = (
        ""
        if share is None
        else f" For the median seed of the first model, those {info['test_above_resolution']}"
        f" test windows carry {share:.1%} of the test MSE."
    )
    if info["scaling"] == "minmax":
        why = (
            " Min-max scaling over a sequence that grows by φ ≈ 1.618 a term leaves almost every"
            " scaled term at zero to float32 precision, so the test MSE is decided by these few."
        )
    else:
        why = " Under log scaling every window carries signal."
    return (
        "## What the test MSE measures\n\n"
        f"Of {info['n_train']} training and {info['n_test']} test windows,"
        f" {info['train_above_resolution']} and {info['test_above_resolution']} have a target"
        f" above float32 resolution ({info['resolution']:.3g}).{why}{share_text}"
    )


def _arm_stats(comparisons: dict[str, Comparison]) -> dict[str, dict[str, Any]]:
    """Each arm's summary statistics: the candidates', then the shared baseline's."""
    out = {c.names[0]: c.summary_a for c in comparisons.values()}
    first = next(iter(comparisons.values()))
    out[first.names[1]] = first.summary_b
    return out


def _md_models(
    summary: dict[str, Any], config: CompareConfig, comparisons: dict[str, Comparison]
) -> str:
    rows = [
        "## Test MSE per model (log10 scale where marked)\n",
        "| model | layers | seeds used | diverged | geometric mean MSE |"
        " median log10 MSE [IQR] | mean log10 MSE ± sd | 95% CI of mean (BCa) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in _arm_stats(comparisons).items():
        arm = summary["arms"][label]
        rows.append(
            f"| {label} | {summary['models'][label]} | {s['n']} | {arm['n_diverged']} |"
            f" {fmt(s['geometric_mean_mse'])} |"
            f" {fmt(s['median'])} [{fmt(s['q25'])}, {fmt(s['q75'])}] |"
            f" {fmt(s['mean'])} ± {fmt(s['std'])} | {_ci(s['mean_ci'])} |"
        )
    dropped = sum(arm["n_diverged"] for arm in summary["arms"].values())
    if dropped:
        pairs = ", ".join(f"{c.n_pairs} ({label})" for label, c in comparisons.items())
        rows.append(
            f"\n{dropped} diverged seed result(s) were left out of every statistic; paired"
            f" statistics use the seeds where both models of a comparison stayed finite: {pairs}."
        )
    return "\n".join(rows)


def _md_tests(comparisons: dict[str, Comparison]) -> str:
    parts = [
        "## Tests and effect sizes\n\n"
        "Primary test, named in advance: the paired Wilcoxon signed-rank test on log10 test MSE"
        + (
            f", one per comparison, its p-values Holm-adjusted over the {len(comparisons)}"
            " comparisons. Everything else is secondary and unadjusted."
            if len(comparisons) > 1
            else ". Everything else is secondary."
        )
    ]
    for comparison in comparisons.values():
        heading = f"### {comparison.names[0]} vs {comparison.names[1]}\n\n"
        parts.append(heading + _md_test_table(comparison))
    return "\n\n".join(parts)


def _md_test_table(comparison: Comparison) -> str:
    p, u, e, w = comparison.paired, comparison.unpaired, comparison.effects, comparison.power
    a, b = comparison.names
    adjusted = []
    if comparison.adjustment is not None:
        adj = comparison.adjustment
        adjusted = [
            f"| **Wilcoxon p, {adj['method'].capitalize()}-adjusted over {adj['family_size']}"
            f" comparisons (decides)** | | | **{fmt(adj['pvalue'])}** |"
        ]
    primary = "primary" if comparison.adjustment is None else "primary, unadjusted"
    rows = [
        "| statistic | value | 95% interval | p |",
        "|---|---:|---:|---:|",
        f"| **Wilcoxon signed-rank (paired, {primary})** | W = {fmt(p['wilcoxon']['statistic'])}"
        f" | | **{fmt(p['wilcoxon']['pvalue'])}** |",
        *adjusted,
        f"| paired permutation test, mean log10 ratio |"
        f" {fmt(p['permutation_mean_diff']['statistic'])} | |"
        f" {fmt(p['permutation_mean_diff']['pvalue'])} |",
        f"| median log10 ratio ({a} − {b}) | {fmt(p['median_log10_ratio']['estimate'])} |"
        f" {_ci(p['median_log10_ratio']['ci'])} | |",
        f"| share of seeds where {a} is lower | {fmt(p['prob_a_wins']['estimate'])} |"
        f" {_ci(p['prob_a_wins']['ci'])} | |",
        f"| correlation of paired log10 MSE (Pearson / Spearman) |"
        f" {fmt(p['correlation']['pearson_r'])} / {fmt(p['correlation']['spearman_rho'])} | | |",
        f"| Welch's t-test (unpaired) | t = {fmt(u['welch']['statistic'])} | |"
        f" {fmt(u['welch']['pvalue'])} |",
        f"| Mann–Whitney U (unpaired) | U = {fmt(u['mann_whitney']['statistic'])} | |"
        f" {fmt(u['mann_whitney']['pvalue'])} |",
        f"| P(MSE {a} < MSE {b}), unpaired | {fmt(e['prob_improvement']['estimate'])} |"
        f" {_ci(e['prob_improvement']['ci'])} | |",
        f"| Cliff's δ (negative: {a} lower) | {fmt(e['cliffs_delta']['estimate'])} |"
        f" {_ci(e['cliffs_delta']['ci'])} | |",
        f"| Hedges' g on log10 MSE | {fmt(e['hedges_g']['estimate'])} |"
        f" {_ci(e['hedges_g']['ci'])} | |",
        f"| paired d_z on log10 MSE | {fmt(e['cohens_dz']['estimate'])} |"
        f" {_ci(e['cohens_dz']['ci'])} | |",
        "",
        f"Power: at the observed d_z = {fmt(w['d_z'])}, the Wilcoxon test needs about"
        f" {fmt(w['n_required_wilcoxon'])} seeds for {w['target_power']:.0%} power at"
        f" α = {w['alpha']}; with {w['n_pairs']} seeds its power is about"
        f" {fmt(w['achieved_power_wilcoxon'], 2)}. Bootstrap intervals use"
        f" {comparison.config.n_resamples} resamples with seed {comparison.config.seed}.",
    ]
    if comparison.notes:
        rows.append("\nNotes: " + "; ".join(comparison.notes) + ".")
    return "\n".join(rows)


def _md_figures(figures: dict[str, str], notes: list[str]) -> str:
    captions = {
        "learning_curves": "Training loss per epoch: median over seeds with a 95% band.",
        "test_mse": "Test MSE per seed on a log scale; grey lines join the models of a seed.",
        "attention_by_step": "Mean attention weight by time step of each attention model, with a"
        " 95% band over seeds.",
        "attention_heatmap": "Attention weights on every test window of the first attention"
        " model's median seed.",
        "predictions": "Predictions of each model's median seed against the truth, scaled and"
        " in Fibonacci numbers, with the relative error.",
    }
    parts = ["## Figures"]
    for name, file in figures.items():
        parts.append(f"{captions[name]}\n\n![{name}]({file})")
    parts.extend(f"{note}." for note in notes)
    return "\n\n".join(parts)


def _md_reproduce(config: CompareConfig) -> str:
    return (
        "## Reproduce\n\n"
        "`summary.json` holds the configuration, the statistics, package versions and the device;"
        " `results.csv` one row per seed and model; `curves.npz` the per-epoch losses. Rebuild"
        " this report without training with `fibjax report DIR`."
    )
