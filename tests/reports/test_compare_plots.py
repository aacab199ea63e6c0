"""The report's figures: each function writes one readable PNG, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from fibjax.reports import compare_plots as plots
from fibjax.reports import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N_SEEDS, EPOCHS, N_WINDOWS, TIME = 12, 30, 60, 20


def check_png(path: Path, folder: Path) -> None:
    """The file is a complete PNG of a sensible size and no temporary file is left beside it."""
    assert path.is_file()
    data = path.read_bytes()
    assert len(data) > 0
    assert data.startswith(PNG_SIGNATURE)
    image = imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def fake_losses(rng: np.random.Generator) -> dict[str, np.ndarray]:
    epochs = np.arange(1, EPOCHS + 1)
    out = {}
    for name, rate in (("vanilla", 0.1), ("attention", 0.2)):
        start = rng.lognormal(-2, 0.5, size=(N_SEEDS, 1))
        loss = start * np.exp(-rate * epochs) * rng.lognormal(0, 0.2, size=(N_SEEDS, EPOCHS))
        out[name] = loss
    out["vanilla"][3] = np.nan  # a seed that diverged from the start
    out["attention"][5, 10:] = np.inf  # a seed that diverged part way
    out["attention"][6, 20:] = 1e300  # finite but past what a log axis can tick
    return out


def fake_mse(rng: np.random.Generator) -> dict[str, np.ndarray]:
    vanilla = rng.lognormal(-9, 1.0, size=N_SEEDS)
    attention = vanilla * rng.lognormal(-0.3, 0.5, size=N_SEEDS)
    vanilla[2] = np.nan
    attention[7] = np.inf
    return {"vanilla": vanilla, "attention": attention}


def fake_alpha(rng: np.random.Generator, *shape: int) -> np.ndarray:
    logits = rng.normal(size=shape) + np.linspace(-1.0, 1.0, shape[-1])
    alpha = np.exp(logits)
    return alpha / alpha.sum(axis=-1, keepdims=True)


def test_learning_curves(tmp_path, rng):
    path = plots.learning_curves(fake_losses(rng), tmp_path / "loss.png")
    assert path == tmp_path / "loss.png"
    check_png(path, tmp_path)


def test_learning_curves_without_geometric_mean_and_all_nan_epoch(tmp_path, rng):
    losses = fake_losses(rng)
    losses["vanilla"][:, -1] = np.nan  # every seed non-finite in the last epoch
    path = plots.learning_curves(losses, tmp_path / "loss.png", geometric_mean=False)
    check_png(path, tmp_path)


def test_mse_distributions(tmp_path, rng):
    path = plots.mse_distributions(fake_mse(rng), tmp_path / "mse.png")
    assert path == tmp_path / "mse.png"
    check_png(path, tmp_path)


def test_mse_distributions_all_nan_model(tmp_path, rng):
    mse = fake_mse(rng)
    mse["attention"] = np.full(N_SEEDS, np.nan)
    check_png(plots.mse_distributions(mse, tmp_path / "mse.png"), tmp_path)


def test_mse_distributions_all_nan_every_model(tmp_path):
    mse = {"vanilla": np.full(4, np.nan), "attention": np.full(4, np.inf)}
    check_png(plots.mse_distributions(mse, tmp_path / "mse.png"), tmp_path)


def test_mse_distributions_one_and_three_models(tmp_path, rng):
    mse = fake_mse(rng)
    check_png(plots.mse_distributions({"vanilla": mse["vanilla"]}, tmp_path / "one.png"), tmp_path)
    mse["other"] = rng.lognormal(-8, 1.0, size=N_SEEDS)
    check_png(plots.mse_distributions(mse, tmp_path / "three.png"), tmp_path)


def test_attention_by_step(tmp_path, rng):
    alpha = fake_alpha(rng, N_SEEDS, N_WINDOWS, TIME)
    alpha[4] = np.nan  # a diverged seed
    other = fake_alpha(rng, N_SEEDS - 2, N_WINDOWS, TIME)  # forms may differ in seeds
    path = plots.attention_by_step({"a": alpha, "b": other}, tmp_path / "by_step.png")
    assert path == tmp_path / "by_step.png"
    check_png(path, tmp_path)


def test_attention_by_step_rejects_wrong_shape(tmp_path, rng):
    with pytest.raises(ValueError, match="n_seeds, n_windows, time"):
        plots.attention_by_step({"a": fake_alpha(rng, N_WINDOWS, TIME)}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_attention_heatmap(tmp_path, rng):
    alpha = fake_alpha(rng, N_WINDOWS, TIME)
    positions = rng.choice(np.arange(TIME, 400), size=N_WINDOWS, replace=False)
    path = plots.attention_heatmap(
        alpha, positions, tmp_path / "heat.png", title_suffix=" (seed 0)"
    )
    assert path == tmp_path / "heat.png"
    check_png(path, tmp_path)


def test_predictions(tmp_path, rng):
    n_terms = 300
    terms = np.empty(n_terms)
    terms[:2] = 1.0, 2.0
    for k in range(2, n_terms):
        terms[k] = terms[k - 1] + terms[k - 2]
    lo, hi = terms.min(), terms.max()

    def to_fibonacci(y):
        return np.asarray(y, dtype=np.float64) * (hi - lo) + lo

    positions = rng.choice(np.arange(TIME, n_terms), size=N_WINDOWS, replace=False)
    truth = (terms[positions] - lo) / (hi - lo)
    predicted = {
        "vanilla": truth + rng.normal(0, 1e-3, size=N_WINDOWS),  # some negative: masked on log
        "attention": truth * rng.lognormal(0, 0.1, size=N_WINDOWS),
    }
    predicted["attention"][0] = truth[0]  # an exact prediction: zero error, masked on log
    predicted["vanilla"][1] = np.nan
    path = plots.predictions(positions, truth, predicted, to_fibonacci, tmp_path / "pred.png")
    assert path == tmp_path / "pred.png"
    check_png(path, tmp_path)


def test_predictions_notebook_data(tmp_path, rng, notebook_data):
    """Terms up to 1e250: the log panels must not overflow Matplotlib's log tick locator."""
    truth = notebook_data.test_y
    predicted = {
        "vanilla": truth + rng.normal(0, 1e-3, size=truth.size),
        "attention": truth * rng.lognormal(0, 0.05, size=truth.size),
    }
    path = plots.predictions(
        notebook_data.test_index,
        truth,
        predicted,
        notebook_data.to_fibonacci,
        tmp_path / "pred.png",
    )
    check_png(path, tmp_path)


def test_attention_heatmap_rejects_mismatched_positions(tmp_path, rng):
    with pytest.raises(ValueError, match="n_windows"):
        plots.attention_heatmap(fake_alpha(rng, 5, TIME), np.arange(4), tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_predictions_zero_truth(tmp_path):
    positions = np.array([22, 20, 21])
    truth = np.array([0.5, 0.0, 0.25])  # the first term maps to 0 under this to_fibonacci
    predicted = {"vanilla": np.array([0.4, 0.1, 0.3])}
    path = plots.predictions(positions, truth, predicted, lambda y: 10 * y, tmp_path / "p.png")
    check_png(path, tmp_path)


def test_failed_save_leaves_nothing(tmp_path, rng):
    missing = tmp_path / "no_such_folder" / "mse.png"
    with pytest.raises(OSError):
        plots.mse_distributions(fake_mse(rng), missing)
    assert not missing.parent.exists()
    assert not list(tmp_path.iterdir())


def test_failed_render_leaves_nothing(tmp_path, monkeypatch, rng):
    target = tmp_path / "mse.png"
    target.write_bytes(b"old")

    def broken_savefig(self, *args, **kwargs):
        args[0].write(PNG_SIGNATURE)  # a partial file, then the render dies
        raise RuntimeError("killed mid-render")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="mid-render"):
        plots.mse_distributions(fake_mse(rng), target)
    assert target.read_bytes() == b"old"  # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["mse.png"]


def test_model_colours_are_distinct():
    from fibjax.models import MODEL_NAMES

    colours = [figures.model_colour(i) for i in range(len(MODEL_NAMES))]
    assert len(set(colours)) == len(colours)


def test_mse_distributions_joins_every_seed_across_models(tmp_path, rng):
    mse = fake_mse(rng)
    four = {"a": mse["attention"], "b": mse["attention"] * 2, "c": mse["vanilla"] / 3, **mse}
    path = plots.mse_distributions(
        four, tmp_path / "four.png", baseline="vanilla", colours={"vanilla": "tab:blue"}
    )
    check_png(path, tmp_path)
