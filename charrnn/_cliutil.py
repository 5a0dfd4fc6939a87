"""What every charrnn command shares: one-line errors, files, memory, argument types.

Used by :mod:`charrnn.cli` and :mod:`charrnn.bench` (which import this module, never
each other's).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import resource
import stat

import numpy as np

from . import _stack
from . import checkpoint as _checkpoint
from . import nets as _nets
from . import data as _data

__all__ = ["CLIError", "EXPECTED", "describe", "reading", "check_output", "available_memory",
           "training_memory", "check_memory", "argument"]


class CLIError(Exception):
    """An error to report as one ``charrnn: error: ...`` line."""


def describe(error):
    """One line for an expected exception: its message, or what it is when it has none."""
    if isinstance(error, MemoryError):
        return f"out of memory ({error})" if str(error) else "out of memory"
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename is not None else ""
        return f"{error.strerror}{where}"
    return str(error) or type(error).__name__


# -- files ---------------------------------------------------------------------------------

@contextlib.contextmanager
def reading(path, noun, what):
    """Errors of reading ``path`` as one-line CLIErrors ("no such file: x.txt")."""
    try:
        yield
    except FileNotFoundError:
        raise CLIError(f"no such {noun}: {path}") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a directory, not {what}") from None
    except _data.DecodeError as e:
        raise CLIError(f"{e}; give the file's encoding with --encoding, or train on raw "
                       f"bytes with --bytes") from None
    except _checkpoint.CheckpointError:
        raise
    except ValueError as e:
        raise CLIError(str(e)) from None
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror or e}") from None


def check_output(path, what, inputs=()):
    """Refuse to write ``what`` to ``path`` unless it is, or will be, a regular file.

    A directory, device, FIFO or socket at ``path`` is refused, and so is any of
    ``inputs`` (``(label, path)`` pairs): the same file under another name, a symbolic
    or hard link included, would be overwritten. A symbolic link to a regular file is
    allowed: writing goes through it to that file, as editors do.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"cannot write {what} {path}: folder {folder} is not writable")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # a new file (or a symbolic link to one)
    except OSError as e:
        raise CLIError(f"cannot write {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise CLIError(f"cannot write {what} {path}: it is {_data.file_kind(mode)}, not a "
                       f"regular file")
    for label, other in inputs:
        with contextlib.suppress(OSError):
            if other is not None and os.path.samefile(path, other):
                same = "" if os.path.abspath(path) == os.path.abspath(other) else \
                    f" (the same file as {other})"
                raise CLIError(f"cannot write {what} {path}: it is {label}{same}; give "
                               f"another path")


# -- memory --------------------------------------------------------------------------------

def _read_number(path, prefix=None):
    """An integer from a /proc or /sys file (the line after ``prefix``); None if absent."""
    try:
        with open(path) as f:
            for line in f:
                if prefix is None:
                    return int(line.split()[0])
                if line.startswith(prefix):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory():
    """Bytes this process may still allocate, as far as the system says; None if unknown.

    The least of: the kernel's MemAvailable plus free swap, the room left under a
    cgroup memory limit (v2 or v1), and the room left under ``RLIMIT_AS``.
    """
    room = []
    avail = _read_number("/proc/meminfo", "MemAvailable:")
    if avail is not None:
        room.append(avail + (_read_number("/proc/meminfo", "SwapFree:") or 0))
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_number(limit), _read_number(usage)
        if cap is not None and used is not None and cap < 2**60:
            room.append(max(cap - used, 0))
    cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    if cap != resource.RLIM_INFINITY:
        used = _read_number("/proc/self/status", "VmSize:") or 0
        room.append(max(cap - used, 0))
    return min(room) if room else None


def training_memory(H, V, T, B, dtype, built=False, cell="rnn", num_layers=1):
    """Bytes that building (unless ``built``) and training a CharRNN allocate, about.

    The float64 weights drawn at construction and their flat copy; parameters and two
    optimizer buffers in ``dtype``; per group of 4 minibatch streams a gradient and the
    activations of T steps (of every layer and gate); transposed weights for training
    and evaluation.
    """
    size = np.dtype(dtype).itemsize
    _, gates, slots = _stack.CELLS[cell]
    GH, L = gates * H, num_layers
    P = _nets.make(cell, num_layers, H, V).P
    G = min(B, 4)
    groups = -(-B // G)
    build = 0 if built else max(16 * P + size * P, 8 * P + 3 * size * P) + slots * L * B * H * size
    layer = (slots * (2 * T + 1) * G * H + 3 * T * G * GH + 2 * T * G * H)
    steps = groups * (P + L * layer + 2 * T * G * V + G * H * slots) * size
    return build + steps + 2 * P * size


def _gigabytes(n):
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(needed, what):
    """Refuse ``what`` up front (a CLIError) if it needs more memory than is available."""
    room = available_memory()
    if room is not None and needed > room:
        raise CLIError(f"{what} needs about {_gigabytes(needed)} of memory, and only "
                       f"{_gigabytes(room)} is available")


# -- arguments and errors ---------------------------------------------------------------

def argument(convert, expected, valid, requirement):
    """An argparse type: ``convert(text)``, refused unless ``valid(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    return parse


#: What :func:`main` reports as one error line: wrong input and checkpoints (CLIError,
#: ValueError, CheckpointError among them), failing reads and writes (OSError), memory
#: that could not be had, diverged training. Any other exception (TypeError,
#: AttributeError, KeyError, RecursionError, ...) is a bug in charrnn: its traceback
#: is kept, to be reported.
EXPECTED = (CLIError, ValueError, OSError, MemoryError, FloatingPointError, IndexError)


def text_file_argument(parser):
    """The optional FILE argument of the commands that train: a text file, or the corpus
    that ships with charrnn."""
    parser.add_argument("file", nargs="?",
                        help="text file to train on (default: the small Shakespeare corpus "
                             "that ships with charrnn)")
