"""Checks at the boundary between Python and the kernels.

Every public function runs its arguments through here before a kernel sees them:
the kernels index without bounds checks, so a shape, dtype or index that got past
these checks would be a crash or a silently wrong result. Messages say what was
wrong and what was expected.
"""
import numbers
import operator

import numpy as np

#: Codes shared with csrc/_kernels.pyx.
ACTIVATIONS = {"tanh": 0, "sigmoid": 1}
OPTIMIZERS = {"adagrad": 0, "sgd": 1, "rmsprop": 2, "adam": 3}
BPTT = {"full": True, "none": False}
DTYPES = {"float64": np.float64, "float32": np.float32}

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")


def integer(value, name, minimum=None):
    """``value`` as a Python int (bools and floats refused), at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def real(value, name, positive=False, nonnegative=False):
    """``value`` as a finite Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {value!r}")
    return options[value]


def clip_value(clip):
    """The kernels' clip argument: a float >= 0, or -1 for no clipping (``None``)."""
    if clip is None:
        return -1.0
    return real(clip, "clip", positive=True)


def dtype(value):
    """np.float64 or np.float32, from a name or a numpy dtype."""
    try:
        dt = np.dtype(value)
    except TypeError:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {value!r}") from None
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {value!r}")
    return DTYPES[dt.name]


def random_state(rng, name="rng") -> np.random.RandomState:
    """A numpy RandomState: ``None`` is numpy's global one (as the seeds use)."""
    if rng is None:
        return np.random.mtrand._rand
    if isinstance(rng, np.random.RandomState):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if not 0 <= int(rng) < 2**32:
            raise ValueError(f"{name} as an int seed must be in [0, 2**32), got {rng}")
        return np.random.RandomState(int(rng))
    raise ValueError(
        f"{name} must be None, an int seed or a numpy.random.RandomState, got {type(rng).__name__}"
    )


def float_array(a, name, shape, dt=None):
    """``a`` as a C-contiguous finite float array of ``shape`` (a copy only if needed).

    ``dt`` None accepts float64 or float32 and keeps it; otherwise the dtype must match.
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of shape {shape}, got {type(a).__name__}")
    if a.dtype.type not in (np.float64, np.float32):
        raise ValueError(f"{name} must have dtype float64 or float32, got {a.dtype}")
    if dt is not None and a.dtype.type is not dt:
        raise ValueError(
            f"{name} has dtype {a.dtype}, but the parameters are {np.dtype(dt).name}"
        )
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    # native byte order: the kernels read raw machine floats
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def params(p):
    """The five parameter arrays as C-contiguous arrays of one float dtype; and H, V."""
    if not isinstance(p, (tuple, list)) or len(p) != 5:
        raise ValueError("params must be a tuple (Wxh, Whh, Why, bh, by) of five arrays")
    Wxh = p[0]
    if not isinstance(Wxh, np.ndarray) or Wxh.ndim != 2:
        raise ValueError(
            f"Wxh must be a 2-D array of shape (H, V), got "
            f"{getattr(Wxh, 'shape', type(Wxh).__name__)}"
        )
    H, V = Wxh.shape
    if H < 1 or V < 1:
        raise ValueError(f"Wxh has shape {Wxh.shape}; hidden and vocabulary sizes must be >= 1")
    dt = Wxh.dtype.type if Wxh.dtype.type in (np.float64, np.float32) else None
    shapes = ((H, V), (H, H), (V, H), (H, 1), (V, 1))
    out = tuple(float_array(a, n, s, dt) for a, n, s in zip(p, PARAM_NAMES, shapes))
    return out, H, V


def hidden(h, H, dt, name="hprev"):
    """A (H, 1) hidden state of the parameters' dtype, as a contiguous (H,) copy."""
    return float_array(h, name, (H, 1), dt).reshape(H).copy()


def indices(seq, V, name) -> np.ndarray:
    """A non-empty 1-D sequence of ints in [0, V), as an int32 array."""
    if isinstance(seq, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of integer indices, not {type(seq).__name__}")
    try:
        a = np.asarray(seq)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a sequence of integer indices: {e}") from None
    if a.dtype == object and a.ndim == 1 and any(np.ndim(x) for x in a):
        # numpy < 1.24 makes a ragged nested list a 1-D array of lists (with a warning)
        # where later versions raise ValueError above: the same mistake, the same error
        raise ValueError(f"{name} must be a sequence of integer indices, "
                         "got nested sequences of different lengths")
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty; it needs at least one index")
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    bad = np.flatnonzero((a < 0) | (a >= V))
    if bad.size:
        k = int(bad[0])
        raise IndexError(f"{name}[{k}] = {a[k]} is outside the vocabulary [0, {V})")
    return np.ascontiguousarray(a, dtype=np.int32)


def index(ix, V, name):
    """One index in [0, V)."""
    ix = integer(ix, name)
    if not 0 <= ix < V:
        raise IndexError(f"{name} = {ix} is outside the vocabulary [0, {V})")
    return ix
