"""Checkpoints: a whole :class:`~charrnn.CharRNN` and its training state in one ``.npz``.

A checkpoint holds the parameters, the optimizer state, the vocabulary, every
hyperparameter, the data pointer, the carried hidden state, the state of the model's
``RandomState``, the history and a format version, so that training resumed from it
ends with the same bits as a run that was never interrupted.

Saving
------
- The data go to a temporary file in the target's folder, are flushed to disk, and
  the temporary file is renamed over the target (``os.replace``): a crash while
  writing never destroys the previous checkpoint.
- Only regular files are written. A target that exists and is a directory, a
  device (``/dev/null``), a FIFO or a socket is refused with an ``OSError`` before
  anything is created, and checked again just before the rename.
- A symbolic link is written *through*, as editors do: the link is resolved, the
  temporary file is made beside the file it points to and renamed over that file,
  so the link stays a link and shows the new checkpoint. A dangling link is
  written through too (its target is created) when the target's folder exists;
  otherwise, and for a loop of links, ``save`` raises ``OSError``.
- An existing file keeps its permission bits; a new one gets ``0o666 & ~umask``.

Loading
-------
A checkpoint may come from a stranger, so :func:`load` trusts nothing in it and
never allocates more than the file can honestly hold:

- it is read member by member with its own inflater over the zip directory (never
  ``numpy.load``): members with unknown names are refused unread, and so are
  compression methods other than stored and deflate (bzip2 and LZMA cannot be
  inflated a bounded amount at a time), encrypted members and repeated names;
- every ``.npy`` header (versions 1.0, 2.0 and 3.0, at most 10,000 bytes) is parsed
  without ``eval`` and its dtype, byte count, shape and order are checked against
  what the config implies (:data:`_MEMBERS`) before any data are read; an object
  dtype (a pickle) is refused, never unpickled;
- the JSON members (``config``, ``meta``) are at most 1 MiB (262,144 characters)
  and are refused if they nest deeper than 32 levels, checked by a scan that skips
  strings, before ``json.loads`` sees them; every config field's type and range is
  checked (:data:`_FIELDS`), and ``meta`` is only guaranteed to be a JSON object;
- **the size rule**: the members' sizes in memory are known from their checked
  headers before any data are read, and their sum may be at most four times the
  size of the file plus 1 MiB. :func:`save` stores members uncompressed, so a
  checkpoint it wrote is never smaller than its contents and always passes; the
  factor four leaves room for a deflated copy (``numpy.savez_compressed``) of a
  fresh model, whose optimizer state (two more copies of the parameters, all
  zeros) shrinks to nothing beside the parameters, which hardly compress. A
  deflate bomb, whose members claim hundreds of times the file's size, is refused
  before anything is inflated. Loading any file thus holds at most its members
  (four times its size plus 1 MiB), the model built from them (about as much
  again) and zipfile's list of the archive's entries (a few times the size of the
  zip directory);
- each member is then inflated into a buffer of exactly the size its header
  declares, a bounded amount at a time; a member that inflates to more (or less)
  than its zip directory entry says, or whose CRC-32 differs, is refused without
  the excess ever being produced.

Whatever the file holds, :func:`load` raises :class:`CheckpointError` (a ValueError)
for it, never another exception; an ``OSError`` only comes from opening the file.

Layout (format version 2), one ``.npy`` member per name, as ``numpy.savez`` writes:

=======================  ===========================================================
``format``               the string ``"charrnn"``
``format_version``       int64 scalar
``config``               JSON: hyperparameters (``cell``, ``num_layers``, ``dropout``,
                         the schedule ...), ``iteration``, ``pointer``, ``epoch``,
                         ``schedule`` (:data:`_FIELDS`)
``chars``                (V,) uint32, the vocabulary's code points
``params``               (P,) the weights end to end (model dtype): Wxh, Whh, Why, bh,
                         by for the seeds' model, else PyTorch's order
                         (:meth:`CharRNN.state_dict`)
``m1``, ``m2``           (P,) optimizer state
``hprev``                the carried state: (B*H,) for the seeds' model, (S*L*B*H,)
                         for stacked cells
``smooth_loss``          float64 scalar
``rng_keys``             (624,) uint32; ``rng_pos``, ``rng_has_gauss`` int64;
                         ``rng_gauss`` float64: ``RandomState.get_state()``
``dropout_rng_*``        the same for the dropout masks' stream (format 2)
``history_*``            ``loss``, ``smooth_loss`` (N,) float64; ``val_iteration``
                         (M,) int64, ``val_loss`` (M,) float64
``meta``                 JSON: whatever the caller adds (the CLI's text options)
=======================  ===========================================================

Format 1 files (the seeds' model only) load with the format-2 defaults.

A new format version adds a config field with one line in :data:`_FIELDS` and a
member with one line in :data:`_MEMBERS`, each with the version that introduced it
(``since``); files of older versions keep loading.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from . import _validate as check
from . import nets as _nets
from .schedule import SCHEDULES

__all__ = ["FORMAT_VERSION", "CheckpointError", "save", "read", "INIT_FIELDS",
           "STATE_FIELDS"]

#: Version written by :func:`save`; :func:`load` reads this one and older ones.
FORMAT_VERSION = 2

_MAGIC = "charrnn"


class CheckpointError(ValueError):
    """A file that is not a complete, valid charrnn checkpoint."""


# -- what a checkpoint may hold ---------------------------------------------------------

_REQUIRED = object()
_SIZE = 2**31   # sizes the kernels index with, exclusive bound
_COUNT = 2**62  # counters the kernel keeps in int64, with room never to wrap


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _power(n):
    """``n`` as ``2**k`` when it is a large power of two."""
    return f"2**{n.bit_length() - 1}" if n >= 2**16 and n & (n - 1) == 0 else str(n)


def _integer(lo, hi):
    """An int in [lo, hi); bools refused."""
    def valid(value):
        if type(value) is not int:
            return f"must be an integer, got {_show(value)}"
        if not lo <= value < hi:
            return f"must be in [{lo}, {_power(hi)}), got {_show(value)}"
    return valid


def _real(lo, hi=math.inf, *, above=False):
    """A finite number >= lo (> lo with ``above``) and < hi; bools refused."""
    def valid(value):
        if type(value) not in (int, float) or not _isfinite(value):
            return f"must be a finite number, got {_show(value)}"
        if value < lo or (above and value == lo) or value >= hi:
            low = f"> {lo}" if above else f">= {lo}"
            return f"must be {low}" + (f" and < {hi}" if hi < math.inf else "") + \
                f", got {value}"
    return valid


def _isfinite(value):
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range
        return False


def _one_of(options):
    def valid(value):
        if not any(value is o or (type(value) is str and value == o) for o in options):
            return f"must be one of {list(options)}, got {_show(value)}"
    return valid


def _optional(inner):
    return lambda value: None if value is None else inner(value)


def _boolean(value):
    if type(value) is not bool:
        return f"must be true or false, got {_show(value)}"


class _Field(NamedTuple):
    """One config field.

    ``valid(value)`` returns what is wrong with a value from the JSON, or None;
    ``init``: passed to ``CharRNN(...)`` (else set on the model after it is built);
    ``since``: the format version that added it; ``default``: its value in files
    without it (of older versions, or optional), else it is required.
    """
    valid: Callable[[Any], Optional[str]]
    init: bool = True
    since: int = 1
    default: Any = _REQUIRED


#: The config's fields. ``init``: passed to ``CharRNN``; otherwise set on the model.
_FIELDS = {
    "hidden_size": _Field(_integer(1, _SIZE)),
    "seq_length": _Field(_integer(1, _SIZE)),
    "learning_rate": _Field(_real(0, above=True)),
    "seed": _Field(_integer(0, 2**32)),
    "activation": _Field(_one_of(check.ACTIVATIONS)),
    "optimizer": _Field(_one_of(check.OPTIMIZERS)),
    "clip": _Field(_optional(_real(0, above=True))),
    "bptt": _Field(_one_of(check.BPTT)),
    "reset_each_epoch": _Field(_boolean),
    "beta1": _Field(_real(0, 1)),
    "beta2": _Field(_real(0, 1)),
    "decay_rate": _Field(_real(0, 1)),
    "eps": _Field(_real(0, above=True)),
    "batch_size": _Field(_integer(1, _SIZE), default=1),  # early format 1: no minibatches
    "dtype": _Field(_one_of(check.DTYPES)),
    "iteration": _Field(_integer(0, _COUNT), init=False),
    "pointer": _Field(_integer(0, _COUNT), init=False),
    "epoch": _Field(_integer(0, _COUNT), init=False),
    "schedule": _Field(_one_of((None, "iterations", "epochs")), init=False),
    # format 2: stacked cells, dropout, global-norm clip, learning-rate schedules
    "cell": _Field(_one_of(_nets.CELLS), since=2, default="rnn"),
    "num_layers": _Field(_integer(1, 257), since=2, default=1),
    "dropout": _Field(_real(0, 1), since=2, default=0.0),
    "clip_norm": _Field(_optional(_real(0, above=True)), since=2, default=None),
    "lr_schedule": _Field(_one_of(SCHEDULES), since=2, default="constant"),
    "warmup_iters": _Field(_integer(0, _COUNT), since=2, default=0),
    "decay_iters": _Field(_optional(_integer(1, _COUNT)), since=2, default=None),
    "min_lr": _Field(_optional(_real(0)), since=2, default=None),
    "lr_decay": _Field(_real(0, 1.0000001, above=True), since=2, default=0.97),
    "decay_every": _Field(_integer(1, _COUNT), since=2, default=1000),
    # zero-state resets (opt-in): files written before it have none
    "reset_every": _Field(_integer(0, _COUNT), since=2, default=0),
}


def _net(c):
    """The network the config describes (its layout gives every size)."""
    return _nets.make(c["cell"], c["num_layers"], c["hidden_size"], c["V"],
                      dropout=c["dropout"], activation=c["activation"], bptt=c["bptt"])


def _params_size(c):
    return _net(c).P


def _per_parameter(c):
    return f"the model has {_params_size(c)} parameters"


def _hidden_size(c):
    return math.prod(_net(c).state_shape(c["batch_size"]))


def _finite(a, c):
    if not np.isfinite(a).all():
        return "holds NaN or infinite values"


def _finite_nonnegative(a, c):
    if not (np.isfinite(a) & (a >= 0)).all():
        return "holds negative, NaN or infinite values"


def _check_chars(a, c):
    if a.size and int(a.max()) >= 0x110000:
        return "holds invalid code points (the vocabulary must be Unicode characters)"
    if np.unique(a).size != a.size:
        return "holds repeated characters (the vocabulary's characters must differ)"


def _in_range(lo, hi_field):
    """Values in [lo, hi], hi an int or the name of a config field."""
    def valid(a, c):
        hi = c[hi_field] if isinstance(hi_field, str) else hi_field
        if a.size and not (lo <= int(a.min()) and int(a.max()) <= hi):
            return f"holds values outside [{lo}, {hi}]"
    return valid


class _Member(NamedTuple):
    """One ``.npy`` member of the archive.

    ``dtype``: a numpy dtype string (byte order free), ``"model"`` (the config's float
    dtype) or ``"U"`` (a JSON or text string, at most 1 MiB). ``shape``: one entry per
    axis, an int, a function of the config ``c`` or the name of a length that the
    first member using it fixes (checked by :data:`_LENGTHS`). ``valid(a, c)``: a
    check of the values, returning what is wrong. ``why(c)``: the expected shape
    in words, for messages.
    """
    dtype: str
    shape: tuple = ()
    valid: Optional[Callable] = None
    why: Optional[Callable] = None
    since: int = 1


#: The members, in the order they are checked (``chars`` fixes V before ``params``).
_MEMBERS = {
    "format": _Member("U"),
    "format_version": _Member("i8"),
    "config": _Member("U"),
    "meta": _Member("U"),
    "chars": _Member("u4", ("V",), _check_chars),
    "params": _Member("model", (_params_size,), _finite, lambda c: (
        f"hidden size {c['hidden_size']} and {c['V']} characters need {_params_size(c)} "
        f"({c['num_layers']} {c['cell']} layer(s))")),
    "m1": _Member("model", (_params_size,), _finite, _per_parameter),
    "m2": _Member("model", (_params_size,), _finite, _per_parameter),
    "hprev": _Member("model", (_hidden_size,), _finite, lambda c: (
        f"the state of {c['num_layers']} {c['cell']} layer(s), batch size "
        f"{c['batch_size']} and hidden size {c['hidden_size']} needs {_hidden_size(c)}")),
    "smooth_loss": _Member("f8", (), _finite_nonnegative),
    "rng_keys": _Member("u4", (624,), None, lambda c: "a Mersenne Twister has 624 keys"),
    "rng_pos": _Member("i8", (), _in_range(0, 624)),
    "rng_has_gauss": _Member("i8", (), _in_range(0, 1)),
    "rng_gauss": _Member("f8", (), _finite),
    "dropout_rng_keys": _Member("u4", (624,), None, lambda c: "a Mersenne Twister has 624 keys",
                                since=2),
    "dropout_rng_pos": _Member("i8", (), _in_range(0, 624), since=2),
    "dropout_rng_has_gauss": _Member("i8", (), _in_range(0, 1), since=2),
    "dropout_rng_gauss": _Member("f8", (), _finite, since=2),
    "history_loss": _Member("f8", ("N",)),
    "history_smooth_loss": _Member("f8", ("N",)),
    "history_val_iteration": _Member("i8", ("M",), _in_range(0, "iteration")),
    "history_val_loss": _Member("f8", ("M",), _finite_nonnegative),
}

#: Lengths fixed by the first member that uses them: lowest, highest(c) (inclusive), and
#: what the length counts.
_LENGTHS = {
    "V": (1, lambda c: 0x110000, lambda c: "the vocabulary's characters"),
    "N": (0, lambda c: c["iteration"],
          lambda c: f"one history entry per iteration, and config iteration is "
                    f"{c['iteration']}"),
    "M": (0, lambda c: _COUNT, lambda c: "validation losses"),
}

_JSON_BYTES = 1 << 20    # a JSON member's data (UCS-4: 262,144 characters)
_JSON_DEPTH = 32
_NPY_HEADER = 10_000     # numpy's own limit for headers of untrusted files
_RATIO, _SLACK = 4, 1 << 20
_CHUNK = 1 << 20         # bytes inflated at a time


# -- saving ------------------------------------------------------------------------------

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
        Written exactly as given (no ``.npz`` is appended). A symbolic link is
        written through: the file it points to gets the new checkpoint and the
        link stays (a dangling link's target is created if its folder exists).
    meta : dict, optional
        JSON-serialisable extra information stored beside the model (the CLI keeps
        its text options and targets here); :func:`load_with_meta` returns it.

    Notes
    -----
    The data are written to a temporary file in the target's folder, flushed to
    disk, and renamed over the target: either the old checkpoint or the new one is
    there, never half of one. An existing file keeps its permission bits. The
    training text itself is not stored.

    Raises
    ------
    FloatingPointError
        If the model's parameters, optimizer state, hidden state or smooth loss hold
        NaN or infinite values (training diverged): nothing is written, so the last
        good checkpoint stays.
    OSError
        If the file cannot be written (disk full, no permission, no such folder),
        or ``path`` is not a regular file: a directory (``IsADirectoryError``), a
        device, FIFO or socket (errno ``EINVAL``), a loop of symbolic links
        (``ELOOP``), or a dangling link whose target folder is missing (``ENOENT``).
        The message names the checkpoint, nothing is created, and the previous file
        at ``path`` is left as it was.
    RuntimeError
        If another thread is training the model (see :class:`CharRNN`).
    """
    if not hasattr(model, "_flat") or not hasattr(model, "_using"):
        raise ValueError(f"model must be a CharRNN, got {type(model).__name__}")
    path = os.fspath(path)
    with model._using("save this model"):
        _save(model, path, meta)


def _save(model, path, meta):
    for name in ("_flat", "_m1", "_m2", "_state", "smooth_loss"):
        if not np.isfinite(getattr(model, name)).all():
            raise FloatingPointError(
                f"not saving {path}: the model's {name.lstrip('_')} hold NaN or infinite "
                f"values (its training diverged); any previous checkpoint there is kept")
    keys, pos, has_gauss, gauss = model.rng.get_state()[1:]
    dkeys, dpos, dhas_gauss, dgauss = model._dropout_rng.get_state()[1:]
    config = {name: getattr(model, name) for name in _FIELDS}
    config.update(dtype=model.dtype.name, iteration=int(model.iteration),
                  pointer=int(model.pointer), epoch=int(model.epoch))
    h = model.history
    arrays = {
        "format": np.array(_MAGIC),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "config": np.array(json.dumps(config)),
        "chars": np.array([ord(c) for c in model.chars], np.uint32),
        "params": model._flat,
        "m1": model._m1,
        "m2": model._m2,
        "hprev": model._state.ravel(),
        "smooth_loss": np.array(model.smooth_loss, np.float64),
        "rng_keys": np.asarray(keys, np.uint32),
        "rng_pos": np.array(pos, np.int64),
        "rng_has_gauss": np.array(has_gauss, np.int64),
        "rng_gauss": np.array(gauss, np.float64),
        "dropout_rng_keys": np.asarray(dkeys, np.uint32),
        "dropout_rng_pos": np.array(dpos, np.int64),
        "dropout_rng_has_gauss": np.array(dhas_gauss, np.int64),
        "dropout_rng_gauss": np.array(dgauss, np.float64),
        "history_loss": h.loss,
        "history_smooth_loss": h.smooth_loss,
        "history_val_iteration": h.val_iteration,
        "history_val_loss": h.val_loss,
        "meta": np.array(json.dumps({} if meta is None else meta)),
    }
    target = _resolve(path)
    mode = _regular_or_absent(path, target)
    folder = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".",
                                   suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())  # mkstemp: 0600
        _regular_or_absent(path, target)  # again: it may have changed meanwhile
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not (e.strerror or "").startswith("cannot save"):
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


def _resolve(path):
    """The absolute path of the file that saving ``path`` replaces (links followed)."""
    target = os.path.abspath(path)
    if not os.path.islink(target):
        return target
    target = os.path.realpath(target)
    if os.path.islink(target):  # realpath stops at a loop
        raise OSError(errno.ELOOP, f"cannot save checkpoint {path}: it is a loop of "
                                   f"symbolic links; nothing was written")
    if not os.path.isdir(os.path.dirname(target)):
        raise OSError(errno.ENOENT, f"cannot save checkpoint {path}: it is a symbolic link "
                                    f"to {target}, whose folder does not exist; nothing "
                                    f"was written")
    return target


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"))


def _regular_or_absent(path, target):
    """Refuse a target that is not a regular file; its permission bits if it exists."""
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _write_error(path, e) from e
    if stat.S_ISREG(mode):
        return stat.S_IMODE(mode)
    kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
    what = "it" if target == os.path.abspath(path) else f"its target {target}"
    raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
                  f"cannot save checkpoint {path}: {what} is {kind}, and charrnn writes "
                  f"checkpoints only to regular files; nothing was written")


def _write_error(path, e):
    """``e`` restated with the checkpoint's name: same errno, so the same OSError subclass."""
    reason = e.strerror or str(e) or type(e).__name__
    message = (f"cannot save checkpoint {path}: {reason}; any previous checkpoint "
               f"there is unchanged")
    return OSError(e.errno, message) if e.errno is not None else OSError(message)


# -- loading -----------------------------------------------------------------------------

def read(path):
    """The checked contents of a checkpoint written by :func:`save`.

    ``charrnn.load`` and ``charrnn.load_with_meta`` build the model from them; this
    function reads and checks the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    config : dict
        Every field of :data:`_FIELDS` (format-2 defaults filled in for older files)
        and ``V``, checked for type and range.
    arrays : dict
        The members, checked against the config (shapes, dtypes, values).
    meta : dict
        A JSON object of at most 1 MiB and 32 levels; its fields are the caller's
        to check.

    Raises
    ------
    CheckpointError (a ValueError)
        For any content that is not a valid charrnn checkpoint: not a zip archive,
        truncated or corrupted, unknown or missing members, a pickled object (never
        unpickled), a field out of range, members larger than the file can hold
        (a decompression bomb, see the module's notes), or a newer format version.
    OSError
        If the file cannot be opened (``FileNotFoundError``, ``IsADirectoryError``,
        ``PermissionError``); a FIFO, device or socket is a CheckpointError.
    """
    path = os.fspath(path)
    _regular_file(path, os.stat(path).st_mode)  # devices are not even opened
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # nor block if swapped
    with open(fd, "rb") as f:
        _regular_file(path, os.fstat(fd).st_mode)
        head = f.read(4)
        if head != b"PK\x03\x04":
            if not head:
                _fail(path, "the file is empty, not a charrnn checkpoint")
            _fail(path, "not a charrnn checkpoint (not an .npz archive)")
        try:
            return _Reader(f, path).load()
        except CheckpointError:
            raise
        except MemoryError:
            _fail(path, "not enough memory to load it")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError, ValueError, struct.error, OverflowError, RecursionError,
                TypeError, KeyError, IndexError, AttributeError, ZeroDivisionError) as e:
            _fail(path, f"the file is truncated or corrupted ({type(e).__name__}: {e})")


def _fail(path, message):
    raise CheckpointError(f"{path}: {message}")


def _regular_file(path, mode):
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not stat.S_ISREG(mode):
        kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
        _fail(path, f"it is {kind}, not a checkpoint file")


_PICKLE = ("holds a pickled Python object; charrnn never unpickles checkpoint data (it "
           "could run code), so it refuses to load this file")
_DESCR = re.compile(r"[<>|=]?([a-zA-Z])(\d{0,9})")
_HEADER_ITEM = (r"\s*'(descr|fortran_order|shape)'\s*:\s*"
                r"('[^']*'|True|False|\((?:\s*\d{1,19}\s*,)*(?:\s*\d{1,19}\s*)?\))\s*")
_HEADER = re.compile(r"\{" + ",".join([_HEADER_ITEM] * 3) + r",?\s*\}\s*")


def _json_depth(text):
    """How deep JSON ``text`` nests arrays and objects, brackets inside strings skipped.

    Linear in the text, and stops counting once deeper than the limit.
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _JSON_DEPTH:
                    break
        elif ch in "]}":
            depth -= 1
    return deepest


class _Stream:
    """One member's bytes, inflated on demand and never more than asked for."""

    def __init__(self, f, info):
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header of {info.filename!r}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        self._f, self._info = f, info
        self._pos = info.header_offset + 30 + name_len + extra_len
        self._raw_left = info.compress_size
        self._inflate = (zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED
                         else None)
        self._pending = b""
        self.crc = self.size = 0

    def _raw(self, n):
        n = min(n, self._raw_left)
        self._f.seek(self._pos)
        data = self._f.read(n)
        if len(data) != n:
            raise EOFError(f"member {self._info.filename!r} is cut short")
        self._pos += n
        self._raw_left -= n
        return data

    def read(self, n):
        """Up to ``n`` bytes; fewer only at the member's end."""
        parts = []
        while n > 0:
            if self._inflate is None:
                data = self._raw(n)
            else:
                if not self._pending and self._raw_left:
                    self._pending = self._raw(_CHUNK)
                if self._inflate.eof or not (self._pending or self._raw_left):
                    break
                data = self._inflate.decompress(self._pending, n)
                self._pending = self._inflate.unconsumed_tail
            if not data and (self._inflate is None or self._inflate.eof):
                break
            parts.append(data)
            n -= len(data)
            self.crc = zlib.crc32(data, self.crc)
            self.size += len(data)
        return b"".join(parts)

    def exactly(self, n, what):
        data = self.read(n)
        if len(data) != n:
            raise EOFError(f"{what} is cut short")
        return data

    def finish(self, name, path):
        """The member ended where its zip entry says, with that CRC-32."""
        if self.size != self._info.file_size or self.read(1):
            _fail(path, f"entry {name!r} holds more data than its zip entry declares "
                        f"({self._info.file_size:,} bytes); the file is corrupted or hostile")
        if self._inflate is not None and not self._inflate.eof:
            raise EOFError(f"entry {name!r} ends before its deflate stream does")
        if self.crc != self._info.CRC:
            raise zipfile.BadZipFile(f"bad CRC-32 for entry {name!r}")


class _Header(NamedTuple):
    dtype: np.dtype
    shape: tuple
    offset: int  # where the data start, in the member's bytes

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


class _Reader:
    """One pass over an opened checkpoint; ``load`` returns ``(model, meta)``."""

    def __init__(self, f, path):
        self.f, self.path = f, path
        self.size = os.fstat(f.fileno()).st_size

    def fail(self, message):
        _fail(self.path, message)

    def load(self):
        self.zip = zipfile.ZipFile(self.f)
        self.infos = self._members()
        version = self._version()
        wanted = {k for k, m in _MEMBERS.items() if m.since <= version}
        for name in self.infos:
            if name not in wanted:
                self.fail(f"entry {name!r} does not belong to a format {version} checkpoint "
                          f"and was not read")
        for name in _MEMBERS:
            if name in wanted and name not in self.infos:
                self.fail(f"the checkpoint has no {name!r} entry; it is incomplete or not a "
                          f"charrnn checkpoint")
        c = self._config(version)
        headers = {name: self._header(name, c) for name in _MEMBERS if name in wanted}
        total = sum(h.nbytes for h in headers.values())
        if total > _RATIO * self.size + _SLACK:
            big = sorted(headers, key=lambda k: -headers[k].nbytes)[:3]
            self.fail(f"its entries would take {total:,} bytes in memory "
                      f"({', '.join(f'{k} {headers[k].nbytes:,}' for k in big)}), but the "
                      f"file has only {self.size:,} bytes; charrnn writes checkpoints "
                      f"uncompressed, so this one is corrupted or a decompression bomb")
        arrays = {name: self._data(name, headers[name], c)
                  for name in headers if name not in ("format", "format_version", "config")}
        meta = self._json("meta", arrays.pop("meta"))
        return c, arrays, meta

    def _members(self):
        """The archive's members by name, refused if unknown, repeated or odd."""
        listed = self.zip.infolist()
        seen = set()
        for info in listed:
            if info.filename in seen:
                self.fail(f"entry {info.filename[:-4]!r} appears twice; the file is corrupted "
                          f"or hostile")
            seen.add(info.filename)
        if "format.npy" not in seen:
            self.fail("an archive, but not a charrnn checkpoint (no 'format' entry)")
        infos = {}
        for info in listed:
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            if name not in _MEMBERS:
                self.fail(f"entry {info.filename!r} is not part of a charrnn checkpoint; "
                          f"unknown entries are refused unread (they could hold a pickled "
                          f"Python object or a decompression bomb)")
            infos[name] = info
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self.fail(f"entry {name!r} uses zip compression method "
                          f"{info.compress_type}; only stored and deflate are read")
            if info.flag_bits & 0x1:
                self.fail(f"entry {name!r} is encrypted")
        return infos

    def _version(self):
        magic = self._data("format", self._header("format", {}), {})
        if magic != _MAGIC:
            self.fail("an archive, but not a charrnn checkpoint (its 'format' entry is "
                      f"{_show(magic)})")
        version = int(self._data("format_version", self._header("format_version", {}), {}))
        if version > FORMAT_VERSION:
            self.fail(f"checkpoint format version {version} is newer than this charrnn reads "
                      f"(version {FORMAT_VERSION}); upgrade charrnn to load it")
        if version < 1:
            self.fail(f"invalid checkpoint format version {version}")
        return version

    def _config(self, version):
        config = self._json("config", self._data("config", self._header("config", {}), {}))
        unknown = [k for k in config if k not in _FIELDS or _FIELDS[k].since > version]
        if unknown:
            self.fail(f"config has fields {', '.join(map(_show, unknown))} that a format "
                      f"{version} checkpoint does not have")
        c = {}
        for name, field in _FIELDS.items():
            if name in config:
                c[name] = config[name]
            elif field.default is not _REQUIRED or field.since > version:
                c[name] = field.default
            else:
                missing = [k for k, f in _FIELDS.items() if k not in config
                           and f.default is _REQUIRED and f.since <= version]
                self.fail(f"config lacks {', '.join(missing)}")
            problem = field.valid(c[name])
            if problem:
                self.fail(f"config field {name} {problem}")
        return c

    def _header(self, name, c):
        """Parse and check the ``.npy`` header of ``name``; fixes the lengths it names."""
        member, info = _MEMBERS[name], self.infos[name]
        s = _Stream(self.f, info)
        what = f"the header of entry {name!r}"
        prefix = s.exactly(8, what)
        if prefix[:6] != b"\x93NUMPY" or prefix[6:] not in (b"\1\0", b"\2\0", b"\3\0"):
            self.fail(f"entry {name!r} is not a .npy array of a known version")
        wide = prefix[6] > 1
        length = struct.unpack("<I" if wide else "<H", s.exactly(4 if wide else 2, what))[0]
        if length > _NPY_HEADER:
            self.fail(f"entry {name!r} has a {length:,}-byte .npy header (at most "
                      f"{_NPY_HEADER:,})")
        text = s.exactly(length, what).decode("utf8" if prefix[6] == 3 else "latin1")
        if not _HEADER.fullmatch(text):
            if "'|O'" in text or "'O'" in text:
                self.fail(f"entry {name!r} {_PICKLE}")
            self.fail(f"entry {name!r} has an unreadable .npy header {_show(text)}")
        items = dict(re.findall(_HEADER_ITEM, text))
        if len(items) != 3:
            self.fail(f"entry {name!r} has an unreadable .npy header {_show(text)}")
        descr = _DESCR.fullmatch(items["descr"].strip("'"))
        if descr and descr[1] == "O":
            self.fail(f"entry {name!r} {_PICKLE}")
        if items["fortran_order"] != "False":
            self.fail(f"entry {name!r} is stored in Fortran order; expected C order")
        dtype = None
        if descr and descr[1] in "fiuU":
            try:
                dtype = np.dtype(descr[0])
            except (TypeError, ValueError):  # "<f3", or a string too long for numpy
                pass
        want = c.get("dtype", "float64") if member.dtype == "model" else member.dtype
        if dtype is None or dtype.kind != np.dtype(want).kind or (
                want != "U" and dtype.itemsize != np.dtype(want).itemsize):
            got = dtype or items["descr"].strip("'")
            if member.dtype == "model" and dtype is not None and dtype.kind == "f":
                self.fail(f"entry {name!r} has dtype {got}, but the model is {want}")
            self.fail(f"entry {name!r} has dtype {got}; expected {np.dtype(want).name}")
        if want == "U" and dtype.itemsize > _JSON_BYTES:
            self.fail(f"entry {name!r} is a string of {dtype.itemsize // 4:,} characters "
                      f"(at most {_JSON_BYTES // 4:,})")
        shape = tuple(int(d) for d in re.findall(r"\d+", items["shape"]))
        self._check_shape(name, member, shape, c)
        header = _Header(dtype, shape, s.size)
        if info.file_size != header.offset + header.nbytes:
            self.fail(f"entry {name!r} declares {header.nbytes:,} bytes of data, but its zip "
                      f"entry says {info.file_size - header.offset:,}; the file is corrupted "
                      f"or hostile")
        return header

    def _check_shape(self, name, member, shape, c):
        if len(shape) != len(member.shape):
            self.fail(f"entry {name!r} has shape {shape}; expected a {len(member.shape)}-d "
                      f"array")
        for axis, (got, want) in enumerate(zip(shape, member.shape)):
            if isinstance(want, str) and want not in c:
                lo, hi, counts = _LENGTHS[want]
                if not lo <= got <= hi(c):
                    self.fail(f"entry {name!r} has {got:,} values; expected {lo} to "
                              f"{hi(c):,} ({counts(c)})")
                c[want], c[want + " from"] = got, name
            elif isinstance(want, str) and got != c[want]:
                self.fail(f"entries {c[want + ' from']!r} and {name!r} have different "
                          f"lengths ({c[want]} and {got})")
            elif not isinstance(want, str):
                expected = want(c) if callable(want) else want
                if got != expected:
                    why = member.why(c) if member.why else f"expected {expected}"
                    self.fail(f"entry {name!r} has {got:,} values, but {why}"
                              if len(shape) == 1 else
                              f"entry {name!r} has shape {shape}; expected axis {axis} "
                              f"of {expected}")

    def _data(self, name, header, c):
        """The member's values: an array, or a str for a "U" member."""
        s = _Stream(self.f, self.infos[name])
        s.exactly(header.offset, f"entry {name!r}")
        buf = np.empty(header.nbytes, np.uint8)
        view, done = memoryview(buf), 0
        while done < header.nbytes:
            chunk = s.read(min(_CHUNK, header.nbytes - done))
            if not chunk:
                raise EOFError(f"entry {name!r} is cut short")
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
        s.finish(name, self.path)
        if header.dtype.kind == "U":
            order = "be" if header.dtype.byteorder == ">" else "le"
            return buf.tobytes().decode("utf-32-" + order).rstrip("\0")
        a = buf.view(header.dtype).reshape(header.shape)
        a = a.astype(header.dtype.newbyteorder("="), copy=False)
        member = _MEMBERS[name]
        problem = member.valid(a, c) if member.valid else None
        if problem:
            self.fail(f"entry {name!r} {problem}")
        return a

    def _json(self, name, text):
        """A JSON object, its nesting checked before the parser sees it."""
        if _json_depth(text) > _JSON_DEPTH:
            self.fail(f"entry {name!r} nests JSON deeper than {_JSON_DEPTH} levels")
        try:
            value = json.loads(text)
        except ValueError as e:
            self.fail(f"entry {name!r} is not valid JSON ({e})")
        if not isinstance(value, dict):
            self.fail(f"entry {name!r} must be a JSON object")
        return value


#: Config fields passed to ``CharRNN(...)``, and those restored after it is built.
INIT_FIELDS = tuple(k for k, f in _FIELDS.items() if f.init)
STATE_FIELDS = tuple(k for k, f in _FIELDS.items() if not f.init)
