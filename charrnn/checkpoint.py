"""Checkpoints: a whole :class:`~charrnn.CharRNN` and its training state in one ``.npz``.

A checkpoint holds the parameters, the optimizer state, the vocabulary, every
hyperparameter, the data pointer, the carried hidden state, the state of the model's
``RandomState``, the history and a format version, so that training resumed from it
ends with the same bits as a run that was never interrupted.

Safety:

- it is read with ``numpy.load(..., allow_pickle=False)`` and holds only numeric
  arrays and JSON text, so a checkpoint from a stranger cannot run code;
- it is written to a temporary file in the same folder and then renamed over the
  old one (``os.replace``), so a crash while writing never destroys the previous one;
- the zip container's CRC-32 catches corrupted bytes, and every entry is checked
  before a model is built from it.

Layout (format version 1), one entry per name:

=======================  ===========================================================
``format``               the string ``"charrnn"``
``format_version``       int64 scalar
``config``               JSON: hyperparameters, ``iteration``, ``pointer``, ``epoch``,
                         ``schedule``
``chars``                (V,) uint32, the vocabulary's code points
``params``               (P,) Wxh, Whh, Why, bh, by end to end (model dtype)
``m1``, ``m2``           (P,) optimizer state
``hprev``                (H,) carried hidden state
``smooth_loss``          float64 scalar
``rng_keys``             (624,) uint32; ``rng_pos``, ``rng_has_gauss`` int64;
                         ``rng_gauss`` float64: ``RandomState.get_state()``
``history_*``            ``loss``, ``smooth_loss``, ``val_iteration``, ``val_loss``
``meta``                 JSON: whatever the caller adds (the CLI's text options)
=======================  ===========================================================
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from . import _validate as check
from .model import CharRNN

__all__ = ["FORMAT_VERSION", "CheckpointError", "save", "load", "load_with_meta"]

#: Version written by :func:`save`; :func:`load` reads this one and older ones.
FORMAT_VERSION = 1

_MAGIC = "charrnn"
_HYPER = ("hidden_size", "seq_length", "learning_rate", "seed", "activation", "optimizer",
          "clip", "bptt", "reset_each_epoch", "beta1", "beta2", "decay_rate", "eps",
          "batch_size")


class CheckpointError(ValueError):
    """A file that is not a complete, valid charrnn checkpoint."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(model, path, *, meta=None):
    """Write ``model`` and its training state to ``path`` atomically.

    Parameters
    ----------
    model : CharRNN
    path : str or os.PathLike
        Written exactly as given (no ``.npz`` is appended).
    meta : dict, optional
        JSON-serialisable extra information stored beside the model (the CLI keeps
        its text options and targets here); :func:`load_with_meta` returns it.

    Notes
    -----
    The data are written to a temporary file in the folder of ``path``, flushed to
    disk, and renamed over ``path``: either the old checkpoint or the new one is
    there, never half of one. The training text itself is not stored.

    Raises
    ------
    FloatingPointError
        If the model's parameters, optimizer state or hidden state hold NaN or
        infinite values (training diverged): nothing is written, so the last good
        checkpoint stays.
    OSError
        If the file cannot be written (disk full, no permission, no such folder):
        the message names the checkpoint, ``errno`` is the original one, and the
        previous file at ``path`` is left as it was.
    RuntimeError
        If another thread is training the model (see :class:`CharRNN`).
    """
    if not isinstance(model, CharRNN):
        raise ValueError(f"model must be a CharRNN, got {type(model).__name__}")
    path = os.fspath(path)
    with model._using("save this model"):
        _save(model, path, meta)


def _save(model, path, meta):
    for name in ("_flat", "_m1", "_m2", "_hprev"):
        if not np.isfinite(getattr(model, name)).all():
            raise FloatingPointError(
                f"not saving {path}: the model's {name.lstrip('_')} hold NaN or infinite "
                f"values (its training diverged); any previous checkpoint there is kept")
    keys, pos, has_gauss, gauss = model.rng.get_state()[1:]
    config = {name: getattr(model, name) for name in _HYPER}
    config.update(dtype=model.dtype.name, iteration=int(model.iteration),
                  pointer=int(model.pointer), epoch=int(model.epoch), schedule=model.schedule)
    h = model.history
    arrays = {
        "format": np.array(_MAGIC),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "config": np.array(json.dumps(config)),
        "chars": np.array([ord(c) for c in model.chars], np.uint32),
        "params": model._flat,
        "m1": model._m1,
        "m2": model._m2,
        "hprev": model._hprev.ravel(),
        "smooth_loss": np.array(model.smooth_loss, np.float64),
        "rng_keys": np.asarray(keys, np.uint32),
        "rng_pos": np.array(pos, np.int64),
        "rng_has_gauss": np.array(has_gauss, np.int64),
        "rng_gauss": np.array(gauss, np.float64),
        "history_loss": h.loss,
        "history_smooth_loss": h.smooth_loss,
        "history_val_iteration": h.val_iteration,
        "history_val_loss": h.val_loss,
        "meta": np.array(json.dumps({} if meta is None else meta)),
    }
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise _write_error(path, e) from e
        raise
    try:  # make the rename itself durable
        dirfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass
    finally:
        os.close(dirfd)


def _write_error(path, e):
    """``e`` restated with the checkpoint's name: same errno, so the same OSError subclass."""
    reason = e.strerror or str(e) or type(e).__name__
    message = (f"cannot save checkpoint {path}: {reason}; any previous checkpoint "
               f"there is unchanged")
    return OSError(e.errno, message) if e.errno is not None else OSError(message)


def load(path: str | os.PathLike[str]) -> CharRNN:
    """Read a checkpoint written by :func:`save` (or ``CharRNN.save``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CharRNN
        With its parameters, optimizer state, hidden state, pointer, iteration,
        RandomState and history as saved. The training text is not in the checkpoint:
        call ``model.set_text(text)`` before ``model.fit(...)``.

    Raises
    ------
    CheckpointError (a ValueError)
        If the file is not a charrnn checkpoint, is truncated or corrupted, holds a
        pickled object (never unpickled), or has a newer format version.
    OSError
        If the file cannot be read.
    """
    return load_with_meta(path)[0]


#: What zipfile and numpy raise on damaged bytes: a flipped version byte in the zip's
#: directory gives NotImplementedError, a flipped flag "encrypted" RuntimeError, a bad
#: name UnicodeDecodeError (a ValueError), a bad header ValueError or struct.error.
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError, ValueError, struct.error, OverflowError)


def _fail(path, message):
    raise CheckpointError(f"{path}: {message}")


def _read(npz, path):
    """Every entry of the archive as an array, refusing pickles and bad bytes."""
    out = {}
    for key in npz.files:
        _check_header(npz, key, path)
        try:
            out[key] = npz[key]
        except ValueError as e:
            if "allow_pickle" in str(e) or "pickle" in str(e):
                _fail(path, f"entry {key!r} holds a pickled Python object; charrnn never "
                            f"unpickles checkpoint data (it could run code), so it refuses "
                            f"to load this file")
            _fail(path, f"entry {key!r} is corrupted ({e})")
        except _CORRUPT as e:
            _fail(path, f"the file is truncated or corrupted (entry {key!r}: {e})")
        if not isinstance(out[key], np.ndarray):
            _fail(path, f"entry {key!r} is not a numpy array; not a charrnn checkpoint")
    return out


def _check_header(npz, key, path):
    """Refuse an entry whose header declares a pickle, or more bytes than it holds.

    Read before numpy allocates the array: a stranger's 1 kB file must not make us
    allocate terabytes.
    """
    try:
        info = npz.zip.getinfo(key + ".npy")
    except KeyError:
        return  # not an .npy member: numpy returns bytes, refused by _read
    try:
        with npz.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dt = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dt = np.lib.format.read_array_header_2_0(f)
            else:
                return  # numpy reports versions it does not know
    except _CORRUPT as e:
        _fail(path, f"the file is truncated or corrupted (entry {key!r}: {e})")
    if dt.hasobject:
        _fail(path, f"entry {key!r} holds a pickled Python object; charrnn never "
                    f"unpickles checkpoint data (it could run code), so it refuses "
                    f"to load this file")
    need = math.prod(shape) * dt.itemsize
    if need > info.file_size:
        _fail(path, f"entry {key!r} declares shape {shape} of {dt} ({need:,} bytes) but "
                    f"holds {info.file_size:,} bytes; the file is truncated or corrupted")


def _entry(arrays, path, key, kind, ndim, shape=None):
    if key not in arrays:
        _fail(path, f"the checkpoint has no {key!r} entry; it is incomplete or not a "
                    f"charrnn checkpoint")
    a = arrays[key]
    if a.dtype.kind not in kind or a.ndim != ndim or (shape is not None and a.shape != shape):
        want = f"shape {shape}" if shape is not None else f"{ndim}-d"
        _fail(path, f"entry {key!r} has dtype {a.dtype} and shape {a.shape}; expected {want} "
                    f"of kind {kind!r}")
    return a


def _json(arrays, path, key):
    text = str(_entry(arrays, path, key, "U", 0)[()])
    try:
        value = json.loads(text)
    except ValueError as e:
        _fail(path, f"entry {key!r} is not valid JSON ({e})")
    if not isinstance(value, dict):
        _fail(path, f"entry {key!r} must be a JSON object")
    return value


def load_with_meta(path):
    """Like :func:`load`, and also return the ``meta`` dict given to :func:`save`.

    Returns
    -------
    model : CharRNN
    meta : dict
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":
        if not head:
            _fail(path, "the file is empty, not a charrnn checkpoint")
        _fail(path, "not a charrnn checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = _read(npz, path)
    except CheckpointError:
        raise
    except _CORRUPT as e:
        _fail(path, f"the file is truncated or corrupted ({type(e).__name__}: {e})")
    if "format" not in arrays or arrays["format"].dtype.kind != "U" \
            or str(arrays["format"][()]) != _MAGIC:
        _fail(path, "an .npz archive, but not a charrnn checkpoint (no 'format' entry)")
    version = int(_entry(arrays, path, "format_version", "iu", 0)[()])
    if version > FORMAT_VERSION:
        _fail(path, f"checkpoint format version {version} is newer than this charrnn reads "
                    f"(version {FORMAT_VERSION}); upgrade charrnn to load it")
    if version < 1:
        _fail(path, f"invalid checkpoint format version {version}")
    try:
        return _build(arrays, path)
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        _fail(path, f"invalid checkpoint contents: {e}")


def _build(arrays, path):
    config = _json(arrays, path, "config")
    meta = _json(arrays, path, "meta")
    config.setdefault("batch_size", 1)  # format 1 files written before minibatches
    missing = [k for k in _HYPER + ("dtype", "iteration", "pointer", "epoch", "schedule")
               if k not in config]
    if missing:
        _fail(path, f"config lacks {', '.join(missing)}")
    codes = _entry(arrays, path, "chars", "u", 1)
    if codes.size == 0 or codes.max() >= 0x110000:
        _fail(path, "the vocabulary ('chars') is empty or holds invalid code points")
    # the sizes must agree before CharRNN allocates (and draws) weights of that size
    H, V = check.integer(config["hidden_size"], "hidden_size", minimum=1), codes.size
    P = 2 * H * V + H * H + H + V
    params = _entry(arrays, path, "params", "f", 1)
    if params.size != P:
        _fail(path, f"entry 'params' has {params.size} values, but hidden size {H} and "
                    f"{V} characters need {P}")
    model = CharRNN([chr(c) for c in codes.tolist()], dtype=config["dtype"],
                    **{k: config[k] for k in _HYPER})
    P, H = model._flat.size, model.hidden_size
    for key, target, size in (("params", "_flat", P), ("m1", "_m1", P), ("m2", "_m2", P),
                              ("hprev", "_hprev", model.batch_size * H)):
        a = _entry(arrays, path, key, "f", 1, (size,))
        if a.dtype != model.dtype:
            _fail(path, f"entry {key!r} has dtype {a.dtype}, but the model is {model.dtype}")
        if not np.isfinite(a).all():
            _fail(path, f"entry {key!r} holds NaN or infinite values")
        setattr(model, target, np.array(a, dtype=model.dtype, order="C"))
    model._hprev = model._hprev.reshape(model.batch_size, H)
    model._restore(smooth_loss=float(_entry(arrays, path, "smooth_loss", "f", 0)[()]),
                   **{k: config[k] for k in ("iteration", "pointer", "epoch", "schedule")})

    keys = _entry(arrays, path, "rng_keys", "u", 1, (624,))
    pos = int(_entry(arrays, path, "rng_pos", "iu", 0)[()])
    if not 0 <= pos <= 624:
        _fail(path, f"rng_pos = {pos} is outside [0, 624]")
    has_gauss = int(_entry(arrays, path, "rng_has_gauss", "iu", 0)[()])
    gauss = float(_entry(arrays, path, "rng_gauss", "f", 0)[()])
    model.rng.set_state(("MT19937", keys.astype(np.uint32), pos, has_gauss, gauss))

    loss = _entry(arrays, path, "history_loss", "f", 1)
    smooth = _entry(arrays, path, "history_smooth_loss", "f", 1)
    val_it = _entry(arrays, path, "history_val_iteration", "iu", 1)
    val_loss = _entry(arrays, path, "history_val_loss", "f", 1)
    if loss.shape != smooth.shape or val_it.shape != val_loss.shape:
        _fail(path, "the history's arrays have different lengths")
    h = model.history
    h._loss = np.array(loss, np.float64)
    h._smooth = np.array(smooth, np.float64)
    h._size = loss.size
    h._val_iteration = [int(i) for i in val_it]
    h._val_loss = [float(v) for v in val_loss]
    return model, meta
