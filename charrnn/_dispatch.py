"""Which build of the kernels runs: the widest this CPU runs (AVX-512, AVX2/FMA, portable).

``CHARRNN_KERNELS=baseline`` forces the portable build; ``CHARRNN_KERNELS=avx2`` or
``avx512`` asks for that build and fails if this CPU (or this installation) cannot run it.
"""
import importlib
import importlib.util
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

VARIANTS = ("baseline", "avx2", "avx512")

#: the vector builds, widest first: (name, what the CPU needs, as the error says it)
_VECTOR_BUILDS = (("avx512", _baseline.cpu_has_avx512, "AVX-512 (F, DQ, VL) and FMA"),
                  ("avx2", _baseline.cpu_has_avx2_fma, "AVX2 and FMA"))


def _vector_build(name):
    """The module of the vector build ``name``, or None where this installation has none.

    Only x86-64 targets get the vector builds (setup.py), so an arm64 wheel has none;
    a build that is there but fails to load raises, rather than hide behind another.
    """
    module = f"{__package__}._kernels_{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None


def built_variants():
    """The builds of the kernels this installation holds, in VARIANTS order."""
    return ("baseline",) + tuple(
        name for name in VARIANTS[1:]
        if importlib.util.find_spec(f"{__package__}._kernels_{name}") is not None)


def load(variant=None):
    """The kernel module for ``variant`` (None: the best this CPU runs) and its name."""
    wanted = (os.environ.get("CHARRNN_KERNELS", "") if variant is None else variant).lower()
    if wanted not in ("",) + VARIANTS:
        raise ValueError(f"CHARRNN_KERNELS must be one of {VARIANTS}, got {wanted!r}")
    if wanted == "baseline":
        return _baseline, "baseline"
    for name, cpu_has, needs in _VECTOR_BUILDS:
        if wanted not in ("", name):
            continue
        if not cpu_has():
            if wanted == name:
                raise ImportError(f"CHARRNN_KERNELS={name}, but this CPU has no {needs}")
            continue
        module = _vector_build(name)
        if module is not None:
            return module, name
        if wanted == name:
            raise ImportError(f"CHARRNN_KERNELS={name}, but this installation of charrnn "
                              f"has no {name} build (built for a target other than x86-64)")
    return _baseline, "baseline"


kernels, variant = load()


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def kernel_info() -> Dict[str, Any]:
    """What runs: ``{"variant": "avx512" | "avx2" | "baseline", "openmp": bool, "threads": int}``.

    ``threads`` is the default ``num_threads`` of minibatch training (the cores this
    process may use); without OpenMP, minibatch streams run on one thread.
    """
    openmp = bool(kernels.has_openmp())
    return {"variant": variant, "openmp": openmp,
            "threads": available_cores() if openmp else 1}
