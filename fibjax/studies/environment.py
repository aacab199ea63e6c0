"""What a study records of the machine and software that ran it (``run.json``, ``sweep.json``)."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from importlib import metadata

RECORDED = ("fibjax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "matplotlib")


def environment_record(command: Sequence[str]) -> dict[str, object]:
    """Package versions, device, platform, the command that started the run, and the time.

    Args:
      command: how the run was started, e.g. ``["fibjax", "compare", "--seeds", "8"]``.

    Returns:
      A JSON-ready dict: ``versions`` (``None`` for a package not installed), ``device``,
      ``platform``, ``command``, ``started``.
    """
    from fibjax.training import runtime  # imports JAX; the command line calls this after setup

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in RECORDED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "device": runtime.device_description(),
        "platform": platform.platform(),
        "command": list(command),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
