"""Training: one seed as a pure program, many seeds over devices, and what they run on.

- :mod:`fibjax.training.config`: :class:`~fibjax.training.config.TrainConfig`, the windows and
  :class:`~fibjax.training.config.FitResult` (what a training takes and gives), seed checks.
- :mod:`fibjax.training.program`: the training of one seed (shuffle, epochs, mini-batches),
  XLA's compile options, ``fit``.
- :mod:`fibjax.training.evaluation`: the mean squared errors after training.
- :mod:`fibjax.training.layout`: the program for the backend (CPU or accelerator), seeds per
  device and per vmapped chunk.
- :mod:`fibjax.training.memory`: the memory a training needs, checked before it compiles.
- :mod:`fibjax.training.seeds`: many seeds in one compiled call, sharded over devices.
- :mod:`fibjax.training.optim`: the optimizers (Keras's Adam and Optax's).
- :mod:`fibjax.training.sorting`: the sort of many short rows behind the shuffle.
- :mod:`fibjax.training.program_cache`: traced programs kept on disk and compiled ones in memory.
- :mod:`fibjax.training.runtime`: process-wide JAX settings and caches.
- :mod:`fibjax.training.progress`: progress while programs compile and train.
"""
