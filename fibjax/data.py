"""The notebook's data: windows of a scaled Fibonacci sequence, split at random.

With its defaults, :func:`fibonacci_windows` gives the same arrays, element for element, as the
notebook's ``get_fib_XY(1200, 20, 0.7)``: the terms are built by the same float64 recurrence, scaled
with the arithmetic of scikit-learn's ``MinMaxScaler`` and split by the same ``RandomState(13)``
permutation.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

SCALINGS = ("minmax", "log")

# The notebook's recurrence starts at F(2) = 1 + 0 + ... : its k-th term (k from 0) is F(k + 2).
# float64 overflows to inf at the 1,476th term; the log scaling never forms the terms themselves.
MAX_MINMAX_TERMS = 1475


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The options that define a data set; validated when built.

    Attributes:
      n_terms: how many Fibonacci terms to generate.
      window: terms in each input window (the notebook's ``t``).
      train_fraction: share of the windows, after shuffling, that go to training.
      split_seed: seed of the ``RandomState`` permutation that splits the windows.
      scaling: ``"minmax"`` (the notebook's) or ``"log"`` (log of the terms, then min-max).
    """

    n_terms: int = 1200
    window: int = 20
    train_fraction: float = 0.7
    split_seed: int = 13
    scaling: str = "minmax"

    def __post_init__(self) -> None:
        # NumPy numbers become Python ones, so the config compares and saves as one.
        for name, minimum in (("window", 1), ("n_terms", 1), ("split_seed", 0)):
            _check_int(name, getattr(self, name), minimum=minimum)
            object.__setattr__(self, name, int(getattr(self, name)))
        if not isinstance(self.scaling, str) or self.scaling not in SCALINGS:
            raise ValueError(f"scaling={self.scaling!r} is unknown; choose one of {SCALINGS}")
        frac = self.train_fraction
        if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0 < frac < 1:
            raise ValueError(f"train_fraction={frac!r} must be a number strictly between 0 and 1")
        object.__setattr__(self, "train_fraction", float(frac))
        if self.scaling == "minmax" and self.n_terms > MAX_MINMAX_TERMS:
            raise ValueError(
                f"n_terms={self.n_terms} is past the largest Fibonacci term float64 holds with "
                f'"minmax" scaling (at most {MAX_MINMAX_TERMS}); use scaling="log" for more'
            )
        n_windows = self.n_terms - self.window
        if n_windows < 2:
            raise ValueError(
                f"n_terms={self.n_terms} gives {max(n_windows, 0)} windows of {self.window} terms;"
                f" at least window + 2 = {self.window + 2} terms are needed for a train and a test"
                " window"
            )
        n_train = int(frac * n_windows)
        if n_train < 1 or n_train >= n_windows:
            raise ValueError(
                f"train_fraction={frac} leaves a split empty ({n_train} of {n_windows} windows"
                " for training)"
            )

    @property
    def split_sizes(self) -> tuple[int, int]:
        """How many training and test windows the data set has, without building it.

        >>> DataConfig().split_sizes
        (826, 354)
        """
        n_windows = self.n_terms - self.window
        n_train = int(self.train_fraction * n_windows)
        return n_train, n_windows - n_train


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")


@dataclasses.dataclass(frozen=True)
class MinMax:
    """Min-max scaling to [0, 1], in the float64 operations of scikit-learn's ``MinMaxScaler``.

    ``scale = 1 / (max - min)`` (1 for a range under ten machine epsilons), ``offset = 0 - min ·
    scale``; ``x · scale + offset`` scales and ``(y - offset) / scale`` maps back, in that order,
    so the notebook's scaled terms come out bit for bit (the tests check this against
    scikit-learn). Written out because importing scikit-learn costs about half a second of every
    run, a tenth of a warm default comparison.

    Attributes:
      data_min: the smallest value fitted.
      data_max: the largest value fitted.

    >>> scaler = MinMax.fit(np.array([1.0, 2.0, 5.0]))
    >>> scaler.transform(np.array([1.0, 3.0, 5.0]))
    array([0. , 0.5, 1. ])
    >>> scaler.inverse_transform(np.array([0.25]))
    array([2.])
    """

    data_min: float
    data_max: float

    @classmethod
    def fit(cls, values: np.ndarray) -> MinMax:
        """The scaling that maps ``values`` onto [0, 1]."""
        values = np.asarray(values, np.float64)
        return cls(float(np.nanmin(values)), float(np.nanmax(values)))

    @property
    def scale(self) -> float:
        data_range = self.data_max - self.data_min
        return 1.0 / (data_range if data_range >= 10 * np.finfo(np.float64).eps else 1.0)

    @property
    def offset(self) -> float:
        return 0.0 - self.data_min * self.scale

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scales ``x`` (float64, any shape)."""
        return np.asarray(x, np.float64) * self.scale + self.offset

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """Maps scaled values back (float64, any shape)."""
        return (np.asarray(y, np.float64) - self.offset) / self.scale


@dataclasses.dataclass(frozen=True, eq=False)
class FibonacciData:
    """Scaled windows split into training and test sets.

    Attributes:
      train_x: ``<float64>[n_train, window, 1]`` training windows.
      train_y: ``<float64>[n_train]`` the term that follows each training window.
      test_x: ``<float64>[n_test, window, 1]`` test windows.
      test_y: ``<float64>[n_test]`` the term that follows each test window.
      scaler: the fitted :class:`MinMax` (of the terms, or of their logs under ``"log"``).
      config: the :class:`DataConfig` that made these arrays.
      train_index: ``<int64>[n_train]`` position of each training target in the sequence.
      test_index: ``<int64>[n_test]`` position of each test target in the sequence.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    scaler: MinMax
    config: DataConfig
    train_index: np.ndarray
    test_index: np.ndarray

    def to_fibonacci(self, y: np.ndarray) -> np.ndarray:
        """Maps scaled values back to Fibonacci numbers (float64, any shape)."""
        y = np.asarray(y, dtype=np.float64)
        unscaled = self.scaler.inverse_transform(y)
        return np.exp(unscaled) if self.config.scaling == "log" else unscaled


def fibonacci_terms(n_terms: int) -> np.ndarray:
    """The notebook's unscaled sequence: ``<float64>[n_terms]``, 1, 2, 3, 5, 8, ...

    The float64 recurrence is kept as the notebook writes it, so that the rounding of terms past
    2**53 is the notebook's too.

    >>> fibonacci_terms(6)
    array([ 1.,  2.,  3.,  5.,  8., 13.])
    """
    seq = np.zeros(n_terms)
    previous, current = 0.0, 1.0
    for i in range(n_terms):
        seq[i] = previous + current
        previous, current = current, seq[i]
    return seq


def log_fibonacci_terms(n_terms: int) -> np.ndarray:
    """Natural logs of the sequence, ``<float64>[n_terms]``, computed without forming the terms.

    ``log F(k+1) = log F(k) + log(1 + F(k-1)/F(k))``, so thousands of terms stay finite.

    >>> np.allclose(np.exp(log_fibonacci_terms(6)), [1, 2, 3, 5, 8, 13])
    True
    """
    logs = np.zeros(n_terms)
    log_prev, log_cur = -math.inf, 0.0  # log 0, log 1
    for i in range(n_terms):
        logs[i] = np.logaddexp(log_prev, log_cur)
        log_prev, log_cur = log_cur, logs[i]
    return logs


def _scaled_sequence(config: DataConfig) -> tuple[np.ndarray, MinMax]:
    if config.scaling == "log":
        seq = log_fibonacci_terms(config.n_terms)
    else:
        seq = fibonacci_terms(config.n_terms)
    scaler = MinMax.fit(seq)
    return scaler.transform(seq), scaler


def fibonacci_windows(
    n_terms: int = 1200,
    window: int = 20,
    train_fraction: float = 0.7,
    split_seed: int = 13,
    scaling: str = "minmax",
) -> FibonacciData:
    """Builds the notebook's training and test windows.

    Window ``r`` holds the scaled terms ``r .. r + window - 1`` and its target is term
    ``r + window``. The windows are permuted by ``RandomState(split_seed)`` and the first
    ``int(train_fraction * n_windows)`` go to training.

    Args:
      n_terms: how many terms to generate (at most 1,475 under ``"minmax"``).
      window: terms in each input window.
      train_fraction: share of windows used for training, in (0, 1).
      split_seed: seed of the split permutation.
      scaling: ``"minmax"`` (the notebook's) or ``"log"``.

    Returns:
      A :class:`FibonacciData` with ``train_x <float64>[n_train, window, 1]``, ``train_y
      <float64>[n_train]``, and the same for the test split.

    Raises:
      ValueError: an option is out of range (one line naming it).

    >>> data = fibonacci_windows()
    >>> data.train_x.shape, data.test_x.shape
    ((826, 20, 1), (354, 20, 1))
    """
    config = DataConfig(n_terms, window, train_fraction, split_seed, scaling)
    return windows_from_config(config)


def windows_from_config(config: DataConfig) -> FibonacciData:
    """Builds the windows that a validated :class:`DataConfig` describes."""
    seq, scaler = _scaled_sequence(config)
    n_train, n_test = config.split_sizes
    n_windows = n_train + n_test
    x = np.lib.stride_tricks.sliding_window_view(seq[:-1], config.window)[:n_windows]
    target_index = np.arange(config.window, config.n_terms)
    perm = np.random.RandomState(seed=config.split_seed).permutation(n_windows)
    train, test = perm[:n_train], perm[n_train:]
    return FibonacciData(
        train_x=np.ascontiguousarray(x[train]).reshape(len(train), config.window, 1),
        train_y=seq[target_index[train]],
        test_x=np.ascontiguousarray(x[test]).reshape(len(test), config.window, 1),
        test_y=seq[target_index[test]],
        scaler=scaler,
        config=config,
        train_index=target_index[train],
        test_index=target_index[test],
    )


# Targets below float32's resolution at 1 (its machine epsilon) are indistinguishable from zero
# next to the largest scaled term: under min-max scaling, only the last few dozen carry signal.
FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)


def describe(data: FibonacciData, test_predictions: np.ndarray | None = None) -> dict[str, object]:
    """What the MSE measures on this data: which windows carry signal, and how much each counts.

    Args:
      data: the windows.
      test_predictions: optional ``<float>[n_test]`` predictions of a trained model (scaled), to
        split its test MSE over the windows.

    Returns:
      A dict with the window counts per split, the counts of targets above float32 resolution
      (``FLOAT32_RESOLUTION``) per split, and, given predictions, ``test_mse_share``
      ``<float64>[n_test]`` (each window's share of the test MSE, summing to 1) and the share of
      the windows above resolution.

    >>> info = describe(fibonacci_windows())
    >>> info["train_above_resolution"], info["test_above_resolution"]
    (26, 8)
    """
    train_signal = data.train_y > FLOAT32_RESOLUTION
    test_signal = data.test_y > FLOAT32_RESOLUTION
    info: dict[str, object] = {
        "scaling": data.config.scaling,
        "resolution": FLOAT32_RESOLUTION,
        "n_train": int(data.train_y.size),
        "n_test": int(data.test_y.size),
        "train_above_resolution": int(train_signal.sum()),
        "test_above_resolution": int(test_signal.sum()),
    }
    if test_predictions is not None:
        errors = np.square(np.asarray(test_predictions, np.float64) - data.test_y)
        total = errors.sum()
        share = errors / total if total > 0 else np.full_like(errors, 1 / errors.size)
        info["test_mse_share"] = share
        info["test_mse_share_above_resolution"] = float(share[test_signal].sum())
    return info
