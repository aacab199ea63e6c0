"""The notebook's vanilla model trained as directly as JAX allows: the yardstick for accelerators.

``jit(vmap(train))`` over seeds; in ``train``, a ``lax.scan`` over epochs, a fresh
``jax.random.permutation`` of the windows each epoch, a ``lax.scan`` over the batch-1 steps, the
model's 20 time steps written out (``lax.scan(..., unroll=True)``), ``jax.grad`` and Adam in
Keras's form. No chunks, no written-out backward pass, no seed-last layout: what a careful user
would write in an afternoon. ``benchmarks/accelerator.py`` measures fibjax against it in one run.
Not a test, and not part of the package.

Usage: ``python benchmarks/plain_jax.py [--seeds 1 1024] [--epochs 2]`` prints seed-epochs/s.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def make_train(x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 1e-3):
    """``jit(vmap(train))`` of ``train(key) -> final training loss``, the vanilla model."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    n = x.shape[0]

    def predict(p, window):  # window: [time, 1]
        def step(h, x_t):
            h = jnp.tanh(x_t @ p["w"] + p["b"] + h @ p["u"])
            return h, None

        h, _ = jax.lax.scan(step, jnp.zeros(2), window, unroll=True)
        return jnp.tanh(h @ p["v"] + p["c"])[0]

    def loss(p, i):
        return jnp.square(predict(p, x[i]) - y[i])

    def adam(carry, i):
        p, m, v, t = carry
        g = jax.grad(loss)(p, i)
        t = t + 1
        alpha = lr * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        m = jax.tree.map(lambda m, g: m + (g - m) * 0.1, m, g)
        v = jax.tree.map(lambda v, g: v + (g * g - v) * 0.001, v, g)
        p = jax.tree.map(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + 1e-7), p, m, v)
        return (p, m, v, t), None

    def epoch(carry, key):
        carry, _ = jax.lax.scan(adam, carry, jax.random.permutation(key, n))
        return carry, None

    def train(key):
        k = jax.random.split(key, 5)
        p = {
            "w": jax.random.uniform(k[0], (1, 2), minval=-1, maxval=1),
            "u": jax.random.uniform(k[1], (2, 2), minval=-1, maxval=1),
            "b": jnp.zeros(2),
            "v": jax.random.uniform(k[2], (2, 1), minval=-1, maxval=1),
            "c": jnp.zeros(1),
        }
        zeros = jax.tree.map(jnp.zeros_like, p)
        carry = (p, zeros, zeros, jnp.zeros((), jnp.float32))
        (p, *_), _ = jax.lax.scan(epoch, carry, jax.random.split(k[3], epochs))
        return jnp.mean(jax.vmap(lambda i: loss(p, i))(jnp.arange(n)))

    return jax.jit(jax.vmap(train))


def measure(seeds: int, epochs: int, repeats: int = 2) -> dict:
    """Compile time and the best of ``repeats`` timed calls for ``seeds`` seeds."""
    from fibjax.data import fibonacci_windows

    data = fibonacci_windows()
    keys = jax.random.split(jax.random.key(0), seeds)
    start = time.perf_counter()
    train = make_train(data.train_x, data.train_y, epochs).lower(keys).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(train(keys))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(train(keys))
        times.append(time.perf_counter() - start)
    return {
        "seeds": seeds,
        "epochs": epochs,
        "compile_s": compile_s,
        "run_s_all": times,
        "seed_epochs_per_s": seeds * epochs / min(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 1024])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    for seeds in args.seeds:
        row = measure(seeds, args.epochs)
        print(f"{seeds} seeds: {row['seed_epochs_per_s']:,.0f} seed-epochs/s")


if __name__ == "__main__":
    main()
