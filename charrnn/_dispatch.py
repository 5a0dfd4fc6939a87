"""Which build of the kernels runs: AVX2/FMA where the CPU has it, else the portable one.

``CHARRNN_KERNELS=baseline`` forces the portable build; ``CHARRNN_KERNELS=avx2`` asks
for the AVX2 build and fails if this CPU cannot run it.
"""
import os
from typing import Any, Dict

try:
    from . import _kernels as _baseline
except ImportError as e:  # pragma: no cover - only without a build
    raise ImportError(
        "charrnn's compiled kernels (charrnn._kernels) are missing. Install the package "
        "with `pip install .` (or `pip install -e .` for development) so that the Cython "
        "extension is built; running from a source tree without building does not work."
    ) from e

VARIANTS = ("baseline", "avx2")


def load(variant=None):
    """The kernel module for ``variant`` (None: the best this CPU runs) and its name."""
    wanted = (os.environ.get("CHARRNN_KERNELS", "") if variant is None else variant).lower()
    if wanted not in ("",) + VARIANTS:
        raise ValueError(f"CHARRNN_KERNELS must be one of {VARIANTS}, got {wanted!r}")
    if wanted == "baseline":
        return _baseline, "baseline"
    if _baseline.cpu_has_avx2_fma():
        try:
            from . import _kernels_avx2
        except ImportError:
            if wanted == "avx2":
                raise ImportError("this build of charrnn has no AVX2 kernels") from None
        else:
            return _kernels_avx2, "avx2"
    elif wanted == "avx2":
        raise ImportError("CHARRNN_KERNELS=avx2, but this CPU has no AVX2 and FMA")
    return _baseline, "baseline"


kernels, variant = load()


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def kernel_info() -> Dict[str, Any]:
    """What runs: ``{"variant": "avx2" | "baseline", "openmp": bool, "threads": int}``.

    ``threads`` is the default ``num_threads`` of minibatch training (the cores this
    process may use); without OpenMP, minibatch streams run on one thread.
    """
    openmp = bool(kernels.has_openmp())
    return {"variant": variant, "openmp": openmp,
            "threads": available_cores() if openmp else 1}
