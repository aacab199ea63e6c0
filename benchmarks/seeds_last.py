"""How fast the notebook's vanilla model trains with the seed axis last: a measured ceiling.

An experiment for issue 15, not part of the package. ``fibjax.training.seeds`` vmaps a per-seed
training, so every per-seed array becomes ``[seeds, ...]`` with the few hidden units as the
innermost, contiguous axis, and XLA's CPU loops run over axes of length 1 or 2. Here the same
training (the same initial weights from ``fibjax.models``, the same order of windows from
``fibjax.training.program.shuffled_order``, Keras's Adam) is written by hand for a chunk of seeds
with the seed axis last: every parameter, state and gradient is a contiguous ``[seeds]`` vector, the
time loops carry one vector per unit, and the backward pass is written out. Two layouts of the
parameters are timed: a tuple of 11 vectors, one ``[11, seeds]`` array, and the array with the step
cut into three always-true ``lax.cond`` blocks (forward, backward, Adam), which keeps the kernels of
the step's body few enough for XLA's CPU runtime to run them in order (benchmarks/NOTES.md).

It first checks that the hand-written training gives fibjax's weights (to float32 rounding, on a
short series), then times it against ``fibjax.training.seeds.compile_seeds`` in one process,
interleaved, best of ``--repeats`` calls. ``--no-shuffle`` trains every layout (fibjax's too) in the
windows' order, which shows what the per-epoch shuffle costs.

Usage: ``python benchmarks/seeds_last.py [--seeds 256] [--epochs 5] [--repeats 5] [--no-shuffle]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
B1, B2, EPS = 0.9, 0.999, 1e-7  # Keras's Adam (fibjax.training.optim.keras_adam)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed call (5)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls; the best counts")
    parser.add_argument("--no-shuffle", action="store_true", help="train in the windows' order")
    parser.add_argument("--cpu-devices", type=int, default=None, help="default: one per core")
    parser.add_argument("--machine", default=None, help="name of the results file")
    return parser.parse_args()


def initial_weights(keys, model, x1):
    """fibjax's initial weights under each key, raveled: ``<float32>[11, seeds]``, and the keys
    of the window order (``fibjax.training.program.make_train_on`` splits each key the same way)."""
    import jax
    import jax.flatten_util

    def one(key):
        init_key, order_key = jax.random.split(key)
        flat, _ = jax.flatten_util.ravel_pytree(model.init(init_key, x1)["params"])
        return flat, order_key

    flat, order_keys = jax.vmap(one)(keys)
    return flat.T, order_keys


def unpack(p):
    """The raveled vanilla model (``ravel_pytree`` sorts by name): head bias, head kernel [2],
    RNN bias [2], kernel [2], recurrent kernel [2, 2]; each entry a ``[seeds]`` vector."""
    return p[0], (p[1], p[2]), (p[3], p[4]), (p[5], p[6]), ((p[7], p[8]), (p[9], p[10]))


def forward_pass(p, x_all, index, y_all):
    """The window ``index [seeds]`` of each seed through the model: ``x [time, seeds]``, the last
    state, every state, the squared error and its derivative at the head's pre-activation."""
    import jax
    import jax.numpy as jnp

    head_b, head_k, b, w, u = unpack(p)
    units = range(len(b))
    x, y = jnp.take(x_all, index, axis=1), y_all[index]

    def step(h, x_t):
        h = tuple(jnp.tanh(x_t * w[j] + b[j] + (h[0] * u[0][j] + h[1] * u[1][j])) for j in units)
        return h, h

    zero = jnp.zeros_like(y)
    last, states = jax.lax.scan(step, (zero, zero), x)
    z = jnp.tanh(last[0] * head_k[0] + last[1] * head_k[1] + head_b)
    return x, last, states, (z - y) ** 2, 2 * (z - y) * (1 - z * z)


def backward_pass(p, x, last, states, d_z):
    """The gradient ``[11, seeds]``, in :func:`unpack`'s order; the weights' sums over time as one
    reduction of a stacked array (one kernel, not eight)."""
    import jax
    import jax.numpy as jnp

    _, head_k, b, _, u = unpack(p)
    units = range(len(b))

    def step(dh, h_t):
        d_pre = tuple(dh[j] * (1 - h_t[j] * h_t[j]) for j in units)
        return tuple(d_pre[0] * u[i][0] + d_pre[1] * u[i][1] for i in units), d_pre

    _, d_pre = jax.lax.scan(step, tuple(d_z * k for k in head_k), states, reverse=True)
    previous = tuple(jnp.concatenate([jnp.zeros_like(d_z)[None], s[:-1]]) for s in states)
    terms = [*d_pre, *(x * d for d in d_pre), *(h * d for h in previous for d in d_pre)]
    head = jnp.stack([d_z, d_z * last[0], d_z * last[1]])
    return jnp.concatenate([head, jnp.sum(jnp.stack(terms), axis=1)])


def block(fn):
    """``fn`` as an always-true ``lax.cond``: XLA's CPU runtime runs its kernels as a nested body,
    and the enclosing body, with few kernels, in order instead of through its concurrent queue."""
    import jax
    import jax.numpy as jnp

    def run(*args):
        shapes = jax.eval_shape(fn, *args)

        def never(*_):
            return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        always = jax.lax.optimization_barrier(jnp.bool_(True))  # not folded away
        return jax.lax.cond(always, fn, never, *args)

    return run


def adam(p, m, v, g, count, lr):
    import jax.numpy as jnp

    step = count.astype(jnp.float32)
    alpha = lr * jnp.sqrt(1 - B2**step) / (1 - B1**step)
    m = m + (g - m) * (1 - B1)
    v = v + (jnp.square(g) - v) * (1 - B2)
    return p - (m * alpha) / (jnp.sqrt(v) + EPS), m, v


LAYOUTS = ("tuple", "array", "array, blocks")


def train_chunk(flat, order_keys, windows, lr, epochs, layout, shuffle):
    """Trains a device's seeds: ``flat [11, seeds]`` → final ``[11, seeds]``.

    ``layout``: ``"tuple"`` (11 vectors, Adam on each), ``"array"`` (one ``[11, seeds]`` array)
    or ``"array, blocks"`` (the same, forward, backward and Adam each a :func:`block`).
    """
    import jax
    import jax.numpy as jnp

    from fibjax.training.program import shuffled_order

    x_all, y_all = windows.train_x[..., 0].T, windows.train_y  # [time, n], [n]
    n = y_all.shape[0]
    wrap = block if layout == "array, blocks" else (lambda fn: fn)

    def update(carry, index):
        p, m, v, count = carry
        x, last, states, loss, d_z = wrap(forward_pass)(p, x_all, index, y_all)
        g = wrap(backward_pass)(p, x, last, states, d_z)
        if layout == "tuple":
            leaves = zip(p, m, v, list(g), strict=True)
            p, m, v = zip(*(adam(*leaf, count + 1, lr) for leaf in leaves), strict=True)
        else:
            p, m, v = wrap(adam)(p, m, v, g, count + 1, lr)
        return (p, m, v, count + 1), loss

    def epoch(carry, e):
        if shuffle:
            draw = jax.vmap(lambda k: shuffled_order(jax.random.fold_in(k, e), n))
            order = draw(order_keys).T
        else:
            order = jnp.broadcast_to(jnp.arange(n)[:, None], (n, flat.shape[1]))
        return jax.lax.scan(update, carry, order)

    p = tuple(flat) if layout == "tuple" else flat
    zeros = jax.tree.map(jnp.zeros_like, p)
    carry = (p, zeros, zeros, jnp.zeros([], jnp.int32))
    (p, *_), _ = jax.lax.scan(epoch, carry, jnp.arange(epochs))
    return jnp.stack(p) if layout == "tuple" else p


def compile_layout(config, windows, n_seeds, layout, devices):
    """The hand-written training compiled for ``n_seeds`` over ``devices``: (program, args, s)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    from fibjax.models import make_model
    from fibjax.training.config import seed_keys
    from fibjax.training.program import compile_program

    model = make_model(config.model, config.hidden)
    mesh = jax.sharding.Mesh(np.array(devices), ("seeds",))

    def local(seeds, windows):
        flat, order_keys = initial_weights(seed_keys(seeds), model, windows.train_x[:1])
        lr = config.learning_rate
        return train_chunk(flat, order_keys, windows, lr, config.epochs, layout, config.shuffle)

    sharded = jax.shard_map(
        local, mesh=mesh, in_specs=(P("seeds"), P()), out_specs=P(None, "seeds"), check_vma=False
    )
    seeds = jax.device_put(
        jnp.arange(n_seeds, dtype=jnp.uint32), jax.sharding.NamedSharding(mesh, P("seeds"))
    )
    start = time.perf_counter()
    compiled = compile_program(jax.jit(sharded).lower(seeds, windows), "cpu")
    return compiled, (seeds, windows), time.perf_counter() - start


def check_equal(devices) -> float:
    """Largest difference from fibjax's trained weights, 64 seeds, 3 epochs on a short series."""
    import jax
    import jax.flatten_util
    import numpy as np

    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig, Windows
    from fibjax.training.seeds import compile_seeds

    data = fibonacci_windows(n_terms=60)
    config = TrainConfig("vanilla", epochs=3)
    params = compile_seeds(config, data, range(64), devices=devices)().params
    want = np.asarray(jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(params)).T
    worst = 0.0
    for layout in LAYOUTS:
        compiled, args, _ = compile_layout(config, Windows.of(data), 64, layout, devices)
        worst = max(worst, float(np.max(np.abs(np.asarray(compiled(*args)) - want))))
    return worst


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from throughput import cpu_name

    import fibjax

    fibjax.configure(cpu_devices=args.cpu_devices or os.cpu_count(), no_cache=True)
    import jax

    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig, Windows
    from fibjax.training.seeds import compile_seeds

    devices = jax.devices()
    difference = check_equal(devices)
    print(f"largest difference from fibjax's weights (3 epochs, 28 windows): {difference:.2e}")
    if difference > 1e-5:
        print("the hand-written training does not match fibjax; not timing it")
        return 1
    data = fibonacci_windows()
    config = TrainConfig("vanilla", epochs=args.epochs, shuffle=not args.no_shuffle)
    start = time.perf_counter()
    runs = {"fibjax": (compile_seeds(config, data, range(args.seeds)), (), 0.0)}
    runs["fibjax"] = (runs["fibjax"][0], (), time.perf_counter() - start)
    for layout in LAYOUTS:
        runs[f"seeds last, {layout}"] = compile_layout(
            config, Windows.of(data), args.seeds, layout, devices
        )
    best = dict.fromkeys(runs, float("inf"))
    for program, call_args, _ in runs.values():
        jax.block_until_ready(program(*call_args))
    for _ in range(args.repeats):
        for name, (program, call_args, _) in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(program(*call_args))
            best[name] = min(best[name], time.perf_counter() - start)
    rows = []
    for name, (_, _, compile_s) in runs.items():
        rate = args.seeds * args.epochs / best[name]
        ratio = best["fibjax"] / best[name]
        rows.append(
            {"layout": name, "seed_epochs_per_s": rate, "ratio": ratio, "compile_s": compile_s}
        )
        print(f"{name:20s} {rate:8.0f} seed-epochs/s  {ratio:5.2f}x  compile {compile_s:.1f} s")
    machine = args.machine or f"cpu-{len(devices)}dev"
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"seeds-last-{machine}{'-no-shuffle' if args.no_shuffle else ''}.json"
    record = {
        "cpu": cpu_name(),
        "devices": len(devices),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "shuffle": not args.no_shuffle,
        "max_difference": difference,
        "rows": rows,
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
