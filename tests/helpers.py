"""NumPy references (float64), written from the equations, never from fibjax's code.

SimpleRNN: ``h' = tanh(x W + h U + b)``.
GRU (tf-keras, ``reset_after=True``): ``b`` has rows ``b_in``, ``b_rec``; with the fused columns
split as ``[z | r | h]``: ``z = σ(x W_z + b_in,z + h U_z + b_rec,z)``, ``r`` alike,
``ĥ = tanh(x W_h + b_in,h + r ⊙ (h U_h + b_rec,h))``, ``h' = z ⊙ h + (1 − z) ⊙ ĥ``.
LSTM (tf-keras): columns ``[i | f | c | o]``; ``c' = σ(f) c + σ(i) tanh(g)``,
``h' = σ(o) tanh(c')``.
Poolings: the last state; the notebook's ``s_t = tanh(h_t W + b_t)``; additive
``s_t = v · tanh(h_T W_q + h_t W_k + b)``; dot ``s_t = (h_t W_k) · q / sqrt(H)``; then
``α = softmax_t(s)`` and the context ``Σ_t α_t h_t``; the head ``tanh(z w + c)``.
"""

import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def simple_step(state, x, w, u, b):
    return np.tanh(x @ w + state @ u + b)


def gru_step(state, x, w, u, b):
    h = state
    units = h.shape[-1]
    gx = x @ w + b[0]
    gh = h @ u + b[1]
    z = sigmoid(gx[:, :units] + gh[:, :units])
    r = sigmoid(gx[:, units : 2 * units] + gh[:, units : 2 * units])
    candidate = np.tanh(gx[:, 2 * units :] + r * gh[:, 2 * units :])
    return z * h + (1 - z) * candidate


def lstm_step(state, x, w, u, b):
    h, c = state
    units = h.shape[-1]
    g = x @ w + h @ u + b
    i, f = sigmoid(g[:, :units]), sigmoid(g[:, units : 2 * units])
    cand, o = np.tanh(g[:, 2 * units : 3 * units]), sigmoid(g[:, 3 * units :])
    c = f * c + i * cand
    return o * np.tanh(c), c


STEPS = {"simple": simple_step, "gru": gru_step, "lstm": lstm_step}


def states(cell, weights, x):
    """Every hidden state ``[batch, time, H]`` of a cell over ``x`` from zero."""
    w, u, b = (np.asarray(weights[k], np.float64) for k in ("kernel", "recurrent_kernel", "bias"))
    units = u.shape[0]
    h = np.zeros((x.shape[0], units))
    state = (h, h.copy()) if cell == "lstm" else h
    out = []
    for t in range(x.shape[1]):
        state = STEPS[cell](state, np.asarray(x[:, t], np.float64), w, u, b)
        out.append(state[0] if cell == "lstm" else state)
    return np.stack(out, axis=1)


def softmax(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def attention_scores(model, p, hs):
    """Scores ``[batch, time]`` of an attention form for states ``[batch, time, H]``."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    if model == "attention":
        return np.tanh(hs @ p["kernel"] + p["bias"])[..., 0]
    if model == "additive":
        query = hs[:, -1] @ p["query_kernel"]
        return (np.tanh(query[:, None] + hs @ p["key_kernel"] + p["bias"]) @ p["score"])[..., 0]
    if model == "dot":
        return (hs @ p["key_kernel"] @ p["query"])[..., 0] / np.sqrt(hs.shape[-1])
    raise KeyError(model)


def forward(model, cell, params, x):
    """A whole model: predictions ``[batch]`` and α ``[batch, time]`` (``None`` without)."""
    hs = states(cell, params["rnn"]["cell"], np.asarray(x, np.float64))
    alpha = None
    if model == "vanilla":
        z = hs[:, -1]
    else:
        alpha = softmax(attention_scores(model, params["pooling"], hs))
        z = (hs * alpha[..., None]).sum(axis=1)
    dense = params["head"]["dense"]
    y = np.tanh(z @ np.asarray(dense["kernel"], np.float64) + dense["bias"])[:, 0]
    return y, alpha


def central_differences(loss, value, step=1e-6):
    """``d loss / d value`` by central differences, entry by entry."""
    numeric = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        delta = np.zeros_like(value)
        delta[i] = step
        numeric[i] = (loss(value + delta) - loss(value - delta)) / (2 * step)
    return numeric


def holm_step_down(p):
    """Holm's adjusted p-values by the step-down rule, NumPy only: sort ascending, multiply the
    ``i``-th (from 0) by ``m - i``, take the running maximum, clip to 1, undo the sort."""
    p = np.asarray(p, np.float64)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    out = np.empty_like(p)
    out[order] = stepped
    return out


# A comparison small enough to compile and run in seconds, and the figures one draws
# (tests/test_compare.py and tests/test_compare_family.py).
PNG = b"\x89PNG\r\n\x1a\n"
QUICK = ["--seeds", "3", "--epochs", "2", "--n-terms", "80", "--window", "6"]
FIGURES = [
    "learning_curves.png",
    "test_mse.png",
    "attention_by_step.png",
    "attention_heatmap.png",
    "predictions.png",
]


def normal(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal test inputs, ``<float32>[shape]``, drawn by NumPy: no JAX program to
    compile for each new shape (``jax.random.normal`` compiles threefry once per shape)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def uniform(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform ``[0, 1)`` test inputs, ``<float32>[shape]``, drawn by NumPy."""
    return np.random.default_rng(seed).random(shape, dtype=np.float32)
