"""The ``charrnn`` command line: ``train``, ``sample``, ``eval``, ``plot``, ``history`` (and
``bench``).

Only this module writes to the terminal. Errors are one line, ``charrnn: error: ...``
on stderr, with exit status 2: wrong input (files, options, checkpoints and their
``meta``), refused or failed requests for memory, and failing reads and writes. What
:func:`main` turns into such a line is listed there; any other exception is a bug in
charrnn and keeps its traceback. ``train`` stopped by a signal (Ctrl-C, SIGTERM,
SIGHUP) saves its checkpoint and exits with 128 + the signal number (130 for Ctrl-C).
An argument ``@FILE`` stands for the arguments in FILE (:func:`expand_args_files`).

Texts are streamed: read in chunks, decoded and cleaned piece by piece
(:func:`charrnn.data.read_pieces`), once for the vocabulary, length and digest and
once for the indices, so a text costs its indices (1 byte per character up to 256
distinct characters) and not a Python ``str`` of it. Only regular files are read, and
only regular files are written: a checkpoint or image path that is a directory, a
device, a FIFO or a socket, or that is the text being trained on (the same file by
any name), is refused before anything is written.
"""
import argparse
import contextlib
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time

import numpy as np

from . import _validate as check
from . import checkpoint as _checkpoint
from . import data as _data
from . import datasets as _datasets
from . import nets as _nets
from . import presets as _presets
from ._version import __version__
from ._cliutil import (EXPECTED, CLIError, argument as _argument, check_memory, check_output, describe, reading as _reading,
                       text_file_argument, training_memory)
from .model import SHAPE_OPTIONS, STARTS, CharRNN, load_with_meta
from .schedule import SCHEDULES
from .tune import add_parser as _add_tune

#: Model options of ``charrnn train``: argparse dest, CharRNN keyword, default.
MODEL_OPTIONS = (
    ("hidden_size", 100), ("seq_length", 25), ("learning_rate", 0.1), ("seed", 0),
    ("activation", "tanh"), ("optimizer", "adagrad"), ("clip", 5.0), ("bptt", "full"),
    ("reset_each_epoch", False), ("dtype", "float64"), ("beta1", 0.9), ("beta2", 0.999),
    ("decay_rate", 0.95), ("eps", 1e-8), ("batch_size", 1),
    ("cell", "rnn"), ("num_layers", 1), ("dropout", 0.0), ("clip_norm", None),
    ("lr_schedule", "constant"), ("warmup_iters", 0), ("decay_iters", None), ("min_lr", None),
    ("lr_decay", 0.97), ("decay_every", 1000), ("reset_every", 0),
)
#: Text options of ``charrnn train``, kept in the checkpoint so that ``eval`` and
#: ``--resume`` read text the same way.
TEXT_OPTIONS = (("encoding", "utf-8"), ("bytes", False), ("lower", False),
                ("strip_digits", False), ("drop_chars", ""))

#: Below this many characters, ``--val-frac`` defaults to 0 (5% would be too few).
MIN_TEXT_FOR_VAL = 20_000
DEFAULT_VAL_FRAC = 0.05

EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM and SIGHUP give 128 + theirs

#: Iteration and epoch counts stay below this (the kernels count iterations in int64).
MAX_COUNT = 2**62
#: Longest sample printed by ``train`` (``charrnn sample`` streams any length).
MAX_SAMPLE_LENGTH = 10**6
#: ``eval``'s words for the states of ``--start``.
_STARTS = {"carried": "the carried state", "zero": "a zero state"}
#: Highest ``plot --dpi``: 8 x 4.5 inches at 1200 dpi is a 207 MB image in memory.
MAX_DPI = 1200
#: Largest ``sample --prime-file``, in bytes: the prime is read whole and fed through
#: the network a character at a time.
MAX_PRIME_BYTES = 1 << 20
#: What ``sample --num-samples`` writes between two samples: a line holding ``---``.
SAMPLE_SEPARATOR = "\n---\n"
#: Largest ``@file`` of options, in bytes, and how deeply ``@file`` lines may nest.
MAX_ARGS_FILE_BYTES = 1 << 20
MAX_ARGS_FILE_DEPTH = 8


class _SaveError(CLIError):
    """Saving a checkpoint failed (the previous file is unchanged)."""


class _OutputError(CLIError):
    """Printing on stdout failed (closed pipe, vanished terminal)."""


# -- files --------------------------------------------------------------------------------

def _check_training_memory(H, V, T, B, dtype, built, cell="rnn", num_layers=1):
    layers = "" if (cell, num_layers) == ("rnn", 1) else f"{num_layers} {cell} layer(s) of "
    check_memory(training_memory(H, V, T, B, dtype, built, cell, num_layers),
                 f"training {layers}hidden size {H} on {V} characters (seq_length {T}, "
                 f"batch size {B}, {np.dtype(dtype).name})")


# -- options and checkpoint meta ---------------------------------------------------------

def _check_encoding(encoding):
    try:
        _data.check_encoding(encoding)
    except ValueError as e:
        raise CLIError(str(e)) from None


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _meta_fields(meta, path):
    """The fields of a checkpoint's ``meta`` that the CLI reads, checked.

    Absent fields (checkpoints saved from Python) get their defaults, or None where
    the CLI then decides. A field of the wrong type or range is a CLIError naming it:
    ``meta`` comes from a file and is trusted no more than a command line.
    """
    def bad(name, expected):
        raise CLIError(f"{path}: invalid checkpoint meta {name} = {_shown(meta[name])}; "
                       f"expected {expected}")

    def integer(value):
        return isinstance(value, int) and not isinstance(value, bool)

    out = {}
    for name, default in TEXT_OPTIONS:
        kind = str if name in ("encoding", "drop_chars") else bool
        out[name] = meta.get(name, default)
        if type(out[name]) is not kind:
            bad(name, "true or false" if kind is bool else "a string")
    try:
        _text_options_valid(out)
    except CLIError as e:
        raise CLIError(f"{path}: invalid checkpoint meta: {e}") from None
    out["val_frac"] = meta.get("val_frac")
    if out["val_frac"] is not None:
        v = out["val_frac"]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1):
            bad("val_frac", "a number in [0, 1)")
        out["val_frac"] = float(v)
    out["eval_every"] = meta.get("eval_every")
    if out["eval_every"] is not None and not (integer(out["eval_every"])
                                              and 1 <= out["eval_every"] < MAX_COUNT):
        bad("eval_every", "an integer >= 1")
    out["target"] = target = meta.get("target")
    if target is not None and not (
            isinstance(target, dict) and len(target) == 1
            and next(iter(target)) in ("iterations", "epochs")
            and integer(next(iter(target.values())))
            and 0 <= next(iter(target.values())) < MAX_COUNT):
        bad("target", '{"iterations": N} or {"epochs": N} with an integer N >= 0')
    out["source"] = source = meta.get("source")
    if source is not None and not (isinstance(source, str) and source and "\0" not in source):
        bad("source", "the path of the text file (a string) or null")
    out["synthetic"] = synthetic = meta.get("synthetic")
    if synthetic is not None and not _synthetic_valid(synthetic):
        bad("synthetic", f'{{"name": NAME, "size": N, "seed": S}} with NAME one of '
                         f'{sorted(_datasets.SYNTHETIC)}, 1 <= N <= {_datasets.MAX_SYMBOLS} '
                         f'and 0 <= S < 2**32')
    out["text_sha256"] = digest = meta.get("text_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                   and all(c in "0123456789abcdef" for c in digest)):
        bad("text_sha256", "64 hexadecimal digits")
    return out


def _synthetic_valid(synthetic):
    """Whether a checkpoint's ``meta["synthetic"]`` is one :func:`_synthetic_text` makes."""
    def integer(value, low, high):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value < high

    return (isinstance(synthetic, dict) and set(synthetic) == {"name", "size", "seed"}
            and synthetic["name"] in _datasets.SYNTHETIC
            and integer(synthetic["size"], 1, _datasets.MAX_SYMBOLS + 1)
            and integer(synthetic["seed"], 0, 2**32))


def _text_options_valid(options):
    """Check a set of text options that are each of the right type, together."""
    if options["bytes"]:
        if options["encoding"] != "utf-8":
            raise CLIError("--bytes and --encoding exclude each other")
        try:
            os.fsencode(options["drop_chars"])
        except UnicodeError:
            raise CLIError(f"--drop-chars {options['drop_chars']!r} has characters that "
                           f"are not bytes") from None
    else:
        _check_encoding(options["encoding"])
    return options


def _model_options(args, saved=None):
    """Model options from the command line; on resume, checked against the checkpoint.

    ``--clip`` 0 (or 'none') stands for no clipping, ``clip=None``.
    """
    out = {}
    for name, default in MODEL_OPTIONS:
        given = getattr(args, name)
        if saved is None:
            out[name] = default if given is None else given
        else:
            value = saved[name]
            same = value if not (name == "clip" and value is None) else 0.0
            if given is not None and given != same:
                flag = "--" + name.replace("_", "-")
                raise CLIError(f"{args.resume} was trained with {flag} {value}, not {given}; "
                               f"leave {flag} out when resuming")
            out[name] = value
    if out["clip"] is not None and out["clip"] <= 0:
        out["clip"] = None
    return out


def _fine_tune_options(args, source):
    """Model options of ``--init-from``: what the model is comes from the checkpoint,
    how it trains from the command line, else from the checkpoint.

    A model option (``SHAPE_OPTIONS``) given with another value than the checkpoint's
    is a CLIError. ``--decay-iters`` is never taken over: a cosine schedule decays
    over this run unless it is given.
    """
    out = {}
    for name, _ in MODEL_OPTIONS:
        given = getattr(args, name)
        value = source.dtype.name if name == "dtype" else getattr(source, name)
        if name in SHAPE_OPTIONS and given is not None and given != value:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{args.init_from} has {flag} {value}, not {given}; a fine-tuned "
                           f"model keeps the shape of its checkpoint: leave {flag} out")
        if given is not None:
            out[name] = given
        else:
            out[name] = None if name == "decay_iters" else value
    if out["clip"] is not None and out["clip"] <= 0:
        out["clip"] = None
    return out


def _fine_tune_text_options(args, saved):
    """Text options of ``--init-from``: those given, else the checkpoint's (the kind of
    vocabulary, characters or bytes, is the checkpoint's)."""
    if args.bytes and not saved["bytes"]:
        raise CLIError(f"{args.init_from} is a model of characters, not bytes; leave "
                       f"--bytes out")
    if args.encoding is not None and saved["bytes"]:
        raise CLIError(f"{args.init_from} is a --bytes model: it reads text as raw bytes, so "
                       f"--encoding {args.encoding} does not apply; leave it out")
    out = {}
    for name, _ in TEXT_OPTIONS:
        given = getattr(args, name)
        out[name] = saved[name] if given is None else given
    return _text_options_valid(out)


def _unknown_chars(chars, bytes_mode):
    """Characters missing from a vocabulary, as an error message shows them."""
    return repr(bytes(ord(c) for c in chars) if bytes_mode else "".join(chars))


def _text_options(args, saved=None):
    """Text options from the command line; on resume, those of the checked ``meta``."""
    out = {}
    for name, default in TEXT_OPTIONS:
        given = getattr(args, name)
        if saved is None:
            out[name] = default if given is None else given
            continue
        value = saved[name]
        if given is not None and given != value:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{args.resume} was trained with {flag} {value!r}, not {given!r}; "
                           f"leave {flag} out when resuming")
        out[name] = value
    return _text_options_valid(out)


# -- text input ---------------------------------------------------------------------------

def _corpus():
    """The shipped corpus, as a file for the length of a ``with`` block."""
    return _datasets.shakespeare_file()


def _synthetic_text(args, saved):
    """``--synthetic``'s ``{"name", "size", "seed"}``, or None for a file.

    On resume without FILE, the checkpoint's, which the command line may repeat but not
    change.
    """
    given = {"name": args.synthetic, "size": args.synthetic_size, "seed": args.synthetic_seed}
    if args.synthetic is not None and args.file is not None:
        raise CLIError(f"FILE and --synthetic exclude each other: train on {args.file} or on "
                       f"--synthetic {args.synthetic}")
    base = saved["synthetic"] if saved is not None and args.file is None else None
    if base is None:
        if args.synthetic is None:
            for key in ("size", "seed"):
                if given[key] is not None:
                    raise CLIError(f"--synthetic-{key} needs --synthetic NAME")
            return None
        return {"name": args.synthetic,
                "size": 10000 if args.synthetic_size is None else args.synthetic_size,
                "seed": 0 if args.synthetic_seed is None else args.synthetic_seed}
    for key, value in given.items():
        flag = "--synthetic" + ("" if key == "name" else f"-{key}")
        if value is not None and value != base[key]:
            raise CLIError(f"{args.resume} was trained with {flag} {base[key]}, not {value}; "
                           f"leave {flag} out when resuming")
    return dict(base)


def _synthetic_file(stack, synthetic):
    """The synthetic text written to a temporary file (for the ``with`` stack's length)."""
    name, size = synthetic["name"], synthetic["size"]
    check_memory(24 * size, f"making --synthetic {name} of {size:,} words")  # ~20 B a word
    text = _datasets.SYNTHETIC[name](size, seed=synthetic["seed"])
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="charrnn-"))
    path = os.path.join(folder, f"{name}.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path, f"the synthetic text {name}"


def _pieces(path, options):
    return _data.read_pieces(path, options["encoding"], bytes_mode=options["bytes"],
                             lower=options["lower"], strip_digits=options["strip_digits"],
                             drop_chars=options["drop_chars"], chunk_bytes=_data.CHUNK_BYTES)


def scan_text(path, options, name):
    """One streamed pass over the cleaned text: its vocabulary, length and SHA-256.

    ``name`` is the text in messages. The digest is that of the whole cleaned text's
    UTF-8 bytes, as checkpoints store it (``text_sha256``).
    """
    with _reading(name, "file", "a text file"):
        return _data.scan_pieces(_pieces(path, options), digest=True)


def encode_text(path, options, name, chars, scan):
    """The second pass: the cleaned text as indices into ``chars`` (an ndarray).

    The text must read the same as in ``scan`` (length and digest), else CLIError.
    """
    with _reading(name, "file", "a text file"):
        return _data.encode_pieces(_pieces(path, options), chars, scan.length,
                                   sha256=scan.sha256, name=name)


def validation_size(n, val_frac):
    """Characters held out at the end of a text of ``n`` characters."""
    n_val = int(round(n * val_frac))
    if val_frac > 0 and n_val < 2:
        raise CLIError(f"--val-frac {val_frac} holds out {n_val} of {n} characters; "
                       f"validation needs at least 2 (use a larger fraction, or 0)")
    return n_val


# -- terminal output ----------------------------------------------------------------------

class Console:
    """Progress lines on stdout: rewritten in place on a terminal, plain lines when piped.

    Characters the terminal's encoding lacks are shown as backslash escapes; a write
    that fails (a closed pipe) raises an _OutputError.
    """

    def __init__(self, quiet, stream=None):
        self.quiet = quiet
        self.stream = sys.stdout if stream is None else stream
        self.tty = self.stream.isatty()
        self.pending = False  # a progress line without its newline

    def _write(self, text):
        try:
            try:
                self.stream.write(text)
            except UnicodeEncodeError:
                encoding = self.stream.encoding or "ascii"
                self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
            self.stream.flush()
        except (OSError, ValueError) as e:
            raise _OutputError(f"cannot print on stdout: {describe(e)}") from None

    def progress(self, line):
        if self.quiet:
            return
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self._write("\r" + line[:max(width, 20)] + "\x1b[K")
            self.pending = True
        else:
            self._write(line + "\n")

    def print(self, text=""):
        if self.quiet:
            return
        self.end_line()
        self._write(text + "\n")

    def end_line(self):
        if self.pending:
            self.pending = False
            self._write("\n")


def write_text(text, bytes_mode, stream=None):
    """Sampled text to stdout: raw bytes in bytes mode, UTF-8 otherwise."""
    stream = sys.stdout if stream is None else stream
    stream.flush()
    data = text.encode("latin-1") if bytes_mode else text.encode("utf-8", "surrogateescape")
    stream.buffer.write(data)
    stream.buffer.flush()


def show(text, bytes_mode):
    """A sample as it can be printed in the progress output."""
    if bytes_mode:
        return text.encode("latin-1").decode("utf-8", "replace")
    return text


def _note(message):
    """A line on stderr that may fail (the terminal may be gone after SIGHUP)."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


def _clock(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# -- train --------------------------------------------------------------------------------

#: Signals that stop training with a final save: Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class _Stop:
    """SIGINT, SIGTERM and SIGHUP set a flag that the training loop reads between chunks.

    The default handlers would end the process (or raise KeyboardInterrupt at any
    bytecode, possibly while the model's state is half updated); a flag lets the loop
    stop at a clean point and save. A second signal of the same kind gets the default
    behaviour back.
    """

    def __init__(self):
        self.signum = None
        self.previous = {}

    def __enter__(self):
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)


def _checkpoint_paths(path):
    root, ext = os.path.splitext(path)
    return path, f"{root}.best{ext or '.npz'}"


def _save(model, path, meta, inputs):
    check_output(path, "checkpoint", inputs)  # again: the paths may have changed
    try:
        _checkpoint.save(model, path, meta=meta)
    except OSError as e:
        raise _SaveError(e.strerror or str(e)) from None  # names the checkpoint
    except ValueError as e:  # refused by the checkpoint module (a special file)
        raise _SaveError(str(e)) from None


def _cmd_train(args):
    with contextlib.ExitStack() as stack:
        return _train(args, stack)


def _apply_preset(args):
    """Fill in the options of ``--preset`` that the command line leaves out."""
    if args.preset is None:
        return
    if args.resume:
        raise CLIError("--preset chooses the options of a new run; leave it out when "
                       "resuming (the checkpoint has them)")
    options = _presets.PRESETS[args.preset][1]
    given_length = args.iterations is not None or args.epochs is not None
    for name, value in options.items():
        if name == "iterations" and given_length:
            continue
        if getattr(args, name) is None:
            setattr(args, name, value)


def _check_fine_tune_flags(args):
    if args.init_from is None:
        for flag, given in (("--keep-optimizer", args.keep_optimizer),
                            ("--extend-vocab", args.extend_vocab)):
            if given:
                raise CLIError(f"{flag} applies to fine-tuning: give --init-from CKPT too")
        return
    if args.resume:
        raise CLIError("--init-from starts a new run from a checkpoint's weights, --resume "
                       "continues one; give one of them")
    if args.preset:
        raise CLIError("--preset chooses the options of a new model; with --init-from the "
                       "checkpoint has them")


def _apply_clean(args):
    """Fill in the text options of ``--clean NAME`` (:data:`charrnn.data.CLEANUPS`)."""
    if args.clean is None:
        return
    if args.bytes:
        raise CLIError(f"--clean {args.clean} removes characters that are not bytes; it "
                       f"cleans text, not --bytes")
    for name, value in _data.CLEANUPS[args.clean].items():
        given = getattr(args, name)
        if given is not None and given != value:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"--clean {args.clean} sets {flag} {value!r}; leave out "
                           f"{flag} {given!r}")
        setattr(args, name, value)


def _train(args, stack):
    console = Console(args.quiet)
    _check_fine_tune_flags(args)
    _apply_preset(args)
    _apply_clean(args)
    if args.print_every is None:
        args.print_every = 1000
    if args.resume and not args.checkpoint:
        args.checkpoint = args.resume  # keep saving where it came from
    if args.keep_best and not args.checkpoint:
        raise CLIError("--keep-best needs --checkpoint PATH (the best one is kept beside it)")

    saved = model = start_model = None
    if args.init_from:
        start_model, start_meta = _load(args.init_from)
        options = _fine_tune_options(args, start_model)
        text_options = _fine_tune_text_options(args, _meta_fields(start_meta, args.init_from))
    elif args.resume:
        model, meta = _load(args.resume)
        saved = _meta_fields(meta, args.resume)
        hyper = {name: getattr(model, name) for name, _ in MODEL_OPTIONS}
        hyper["dtype"] = model.dtype.name
        options = _model_options(args, hyper)
        text_options = _text_options(args, saved)
    else:
        options = _model_options(args)
        text_options = _text_options(args)

    synthetic = _synthetic_text(args, saved)
    source = args.file
    if source is None and saved is not None:
        source = saved["source"]
    if synthetic is not None:
        path, name = _synthetic_file(stack, synthetic)
    elif source is None:
        path, name = os.fspath(stack.enter_context(_corpus())), "the shipped corpus"
    else:
        path = name = source
    latest, best_path = _checkpoint_paths(args.checkpoint) if args.checkpoint else (None, None)
    inputs = [("the training text", path)]
    if args.init_from:
        inputs.append(("the --init-from checkpoint", args.init_from))
    for output in (latest, best_path if args.keep_best else None):
        if output:
            check_output(output, "checkpoint", inputs)

    scan = scan_text(path, text_options, name)
    if scan.length == 0:
        raise CLIError("the text is empty (after preprocessing)")
    if args.val_frac is not None:
        val_frac = args.val_frac
        if saved is not None and saved["val_frac"] not in (None, val_frac):
            raise CLIError(f"{args.resume} was trained with --val-frac "
                           f"{saved['val_frac']}; leave --val-frac out when resuming")
    elif saved is not None and saved["val_frac"] is not None:
        val_frac = saved["val_frac"]
    else:
        val_frac = DEFAULT_VAL_FRAC if scan.length >= MIN_TEXT_FOR_VAL else 0.0
    n_train = scan.length - validation_size(scan.length, val_frac)
    if args.keep_best and n_train == scan.length:
        raise CLIError("--keep-best needs validation text (a --val-frac above 0)")
    # the validation schedule is part of the history, so a resumed run keeps it
    eval_every = args.eval_every
    if eval_every is None and saved is not None:
        eval_every = saved["eval_every"]
    if eval_every is None:
        eval_every = args.print_every

    B, T = options["batch_size"], options["seq_length"]
    if n_train < B * (T + 1):
        held = " (after the validation split)" if n_train < scan.length else ""
        raise CLIError(f"the training text has {n_train:,} characters{held}; training needs "
                       f"at least " + (f"seq_length + 1 = {T + 1}" if B == 1 else
                                       f"batch_size * (seq_length + 1) = {B * (T + 1)}"))
    if model is not None and saved["text_sha256"] not in (None, scan.sha256):
        raise CLIError(f"this text differs from the one {args.resume} was trained on; "
                       f"resuming needs the same file and options (to continue on another "
                       f"text, use the Python API: charrnn.load(path).set_text(text))")
    V = len(scan.chars) if model is None else model.vocab_size
    if start_model is not None:
        missing = sorted(set(scan.chars) - set(start_model.chars))
        if missing and not args.extend_vocab:
            raise CLIError(f"{name} has {len(missing)} character(s) that are not in the "
                           f"vocabulary of {args.init_from}: "
                           f"{_unknown_chars(missing[:50], text_options['bytes'])}; "
                           f"--extend-vocab adds them")
        V = start_model.vocab_size + len(missing)
    _check_training_memory(options["hidden_size"], V, T, B, options["dtype"],
                           built=model is not None, cell=options["cell"],
                           num_layers=options["num_layers"])

    # what to run: a total number of iterations, counted from the start of training
    target = dict(saved["target"]) if saved and saved["target"] else {}
    if args.epochs is not None:
        target = {"epochs": args.epochs}
    elif args.iterations is not None:
        target = {"iterations": args.iterations}
    elif not target:
        target = {"iterations": 5000}
    schedule = "epochs" if "epochs" in target else "iterations"
    if model is not None and model.iteration > 0 and model.schedule not in (None, schedule):
        raise CLIError(f"{args.resume} was trained by {model.schedule}; give "
                       f"--{model.schedule} to continue it")
    if schedule == "epochs":  # CharRNN.iterations_per_epoch of the training part
        total = target["epochs"] * ((n_train // B - 1) // T)
    else:
        total = target["iterations"]
    if model is None:
        if options["lr_schedule"] == "cosine" and options["decay_iters"] is None:
            options["decay_iters"] = max(total, 1)  # a cosine decays over the run's target
        if start_model is not None:
            model = CharRNN.init_from(start_model, scan.chars, extend_vocab=args.extend_vocab,
                                      keep_optimizer=args.keep_optimizer, **options)
        else:
            model = CharRNN(scan.chars, **options)
    indices = encode_text(path, text_options, name, model.chars, scan)
    model.set_data(indices[:n_train])
    val_indices = indices[n_train:]
    if args.threads is not None:
        model.num_threads = args.threads  # how fast, not what: free to change on resume

    meta = dict(text_options, val_frac=val_frac, eval_every=eval_every,
                text_sha256=scan.sha256, target=target,
                source=None if source is None else os.path.abspath(source),
                synthetic=synthetic, version=__version__)
    if args.init_from:
        meta["init_from"] = os.path.abspath(args.init_from)
    best = min(model.history.val_loss, default=math.inf)
    bytes_mode = text_options["bytes"]
    val_at = model.history.val_iteration[-1] if len(model.history.val_loss) else None

    def validate():
        """Record the validation loss (the model's default start) and keep the best."""
        nonlocal best, val_at
        bits = model.evaluate(val_indices) / math.log(2)
        model.history.add_val_loss(model.iteration, bits)
        val_at = model.iteration
        if args.keep_best and bits < best:
            best = bits
            _save(model, best_path, dict(meta, best=True), inputs)

    def sample_line(seed):
        return show(model.sample(args.sample_length, seed=seed), bytes_mode)

    if not args.quiet:
        held = f", {val_indices.size:,} held out for validation" if val_indices.size else ""
        what = (f"{target['epochs']} epochs ({total} iterations)" if schedule == "epochs"
                else f"{total} iterations")
        start = f"resuming at iteration {model.iteration} of " if args.resume else ""
        if args.init_from:
            start = f"fine-tuning {args.init_from}, "
        net = ("" if (model.cell, model.num_layers) == ("rnn", 1) and not model.dropout
               else f"{model.num_layers} {model.cell} layer(s), ")
        console.print(f"charrnn: {model.vocab_size} characters, {net}hidden size "
                      f"{model.hidden_size}, {n_train:,} training characters{held}; "
                      f"{start}{what}")

    intervals = [k for k in (args.print_every, eval_every if val_indices.size else None,
                             args.sample_every, args.checkpoint_every if latest else None) if k]
    chars_per_iteration = model.seq_length * model.batch_size
    stream_length = n_train // model.batch_size
    chunk = 16  # iterations per compiled call, adapted to about 0.1 s
    t_start, it_start = time.perf_counter(), model.iteration
    t_print, it_print = t_start, model.iteration
    out_of_time = False
    with _Stop() as stop_signal:
        try:
            while model.iteration < total and stop_signal.signum is None and not out_of_time:
                it = model.iteration
                stop = min([total, it + chunk] + [(it // k + 1) * k for k in intervals])
                t0 = time.perf_counter()
                model.fit(stop - it, schedule=schedule)
                dt = time.perf_counter() - t0
                if stop - it == chunk:
                    chunk = max(1, min(4 * chunk, int(chunk * 0.1 / max(dt, 1e-6))))
                it = model.iteration
                out_of_time = args.time is not None and \
                    time.perf_counter() - t_start >= args.time
                last = it == total or out_of_time  # the run's end: validate and print
                if val_indices.size and (it % eval_every == 0 or last):
                    validate()
                if it % args.print_every == 0 or last:
                    now = time.perf_counter()
                    rate = (it - it_print) * chars_per_iteration / max(now - t_print, 1e-9)
                    iters_per_s = (it - it_start) / max(now - t_start, 1e-9)
                    epoch = model.epoch + model.pointer / stream_length
                    val = (f" | val {model.history.val_loss[-1]:.4f} bits/char"
                           if val_at == it else "")  # never a stale one
                    console.progress(
                        f"iter {it}/{total} | epoch {epoch:.2f} | loss "
                        f"{model.history.loss[-1]:.4f} | smooth loss {model.smooth_loss:.4f}"
                        f"{val} | {rate:,.0f} chars/s | {_clock((total - it) / iters_per_s)} "
                        f"left")
                    t_print, it_print = now, it
                if args.sample_every and it % args.sample_every == 0 and it != total:
                    # seeded by the iteration, so that the model's RandomState and a resumed
                    # run's samples are those of an uninterrupted run
                    console.print(f"---- sample at iteration {it}\n{sample_line(it)}\n----")
                if latest and args.checkpoint_every and it % args.checkpoint_every == 0 \
                        and not last:
                    _save(model, latest, meta, inputs)
            if val_indices.size and stop_signal.signum is None \
                    and val_at != model.iteration:
                validate()  # a run that trained nothing (its target was reached)
        except (FloatingPointError, _SaveError):
            raise  # diverged (the last good checkpoint stays), or saving itself failed
        except BaseException as failure:
            _save_after(failure, model, latest, meta, inputs)
            raise
        if latest:
            _save(model, latest, meta, inputs)
    console.end_line()
    if stop_signal.signum is not None:
        if not args.quiet:
            how = "" if stop_signal.signum == signal.SIGINT else \
                f" by {signal.Signals(stop_signal.signum).name}"
            where = (f"; saved {latest}, resume with: charrnn train --resume {latest}"
                     if latest else " (nothing saved: there was no --checkpoint)")
            _note(f"charrnn: interrupted{how} at iteration {model.iteration}{where}")
        return 128 + stop_signal.signum
    if not args.quiet:
        elapsed = time.perf_counter() - t_start
        rate = (model.iteration - it_start) * chars_per_iteration / max(elapsed, 1e-9)
        summary = (f"trained {model.iteration - it_start} iterations in {elapsed:.2f} s "
                   f"({rate:,.0f} characters/s), smooth loss {model.smooth_loss:.4f}")
        if out_of_time and model.iteration < total:
            summary = f"stopped by --time {args.time:g} s: " + summary
        if val_indices.size:  # the history's last, measured at the end of this run
            summary += f", validation {model.history.val_loss[-1]:.4f} bits/char"
        console.print(summary)
        if latest:
            console.print(f"checkpoint: {latest}" + (f" (best: {best_path})"
                                                     if args.keep_best else ""))
        console.print("----")
        console.print(sample_line(model.iteration))
        console.print("----")
    return 0


def _save_after(failure, model, latest, meta, inputs):
    """The final save when ``failure`` ended the training loop; the error to report.

    Returns if ``failure`` should propagate as it is (no checkpoint, or a bug: the
    traceback stays); raises a CLIError that says what was saved otherwise.
    """
    if not latest:
        return
    try:
        _save(model, latest, meta, inputs)
    except (CLIError, FloatingPointError) as e:
        if isinstance(failure, EXPECTED):
            raise CLIError(f"{describe(failure)}; and the checkpoint was not saved: "
                           f"{e}") from None
        return
    if isinstance(failure, EXPECTED):
        kind = _OutputError if isinstance(failure, _OutputError) else CLIError
        raise kind(f"{describe(failure)} (training stopped at iteration {model.iteration}; "
                   f"saved {latest}, resume with: charrnn train --resume {latest})") from None


# -- sample, eval, plot -------------------------------------------------------------------

def _load(path):
    with _reading(path, "checkpoint", "a checkpoint"):
        return load_with_meta(path)


def _start_char(args, model, bytes_mode, prime):
    """``--start-char``, checked against the model's vocabulary (None if not given)."""
    c = args.start_char
    if c is None:
        return None
    if prime is not None:
        raise CLIError("--start-char and --prime exclude each other (so do --start-char "
                       "and --prime-file): --start-char is the first input after the "
                       "carried state, a prime the text that leads to the first input")
    if bytes_mode:
        c = os.fsencode(c).decode("latin-1")
    if len(c) != 1:
        unit = "one byte (a --bytes model)" if bytes_mode else "one character"
        raise CLIError(f"--start-char must be {unit}, got {args.start_char!r}")
    if c not in model.char_to_ix:
        raise CLIError(f"--start-char {args.start_char!r} is not in the model's vocabulary")
    return c


def read_prime_file(path, fields):
    """The text of ``sample --prime-file`` (``-``: stdin), read as the checkpoint's
    training text was: its encoding (or raw bytes) and its clean-up options.

    At most ``MAX_PRIME_BYTES`` are read; a longer file is a CLIError.
    """
    name = "stdin" if path == "-" else path
    with _reading(name, "file", "a text file"):
        if path != "-":
            with _data.open_regular(path) as f:
                raw = f.read(MAX_PRIME_BYTES + 1)
        elif sys.stdin is None:
            raise CLIError("--prime-file -: there is no stdin to read")
        else:
            raw = sys.stdin.buffer.read(MAX_PRIME_BYTES + 1)
    if len(raw) > MAX_PRIME_BYTES:
        raise CLIError(f"--prime-file {name} is longer than {MAX_PRIME_BYTES:,} bytes, the "
                       f"most a prime may be; give the end of it (e.g. tail -c 100000)")
    clean = (fields["lower"], fields["strip_digits"], fields["drop_chars"])
    if fields["bytes"]:
        return _data.preprocess(raw, *clean).decode("latin-1")
    encoding = fields["encoding"]
    try:
        text = "".join(_data._decoded([raw], _data._decoder(encoding), name, encoding))
    except _data.DecodeError as e:
        raise CLIError(f"--prime-file {e} (the checkpoint's text encoding)") from None
    return _data.preprocess(text, *clean)


def _sample_prime(args, model, fields):
    """The prime of ``sample`` (``--prime`` or ``--prime-file``), or None; every
    character checked against the vocabulary."""
    bytes_mode = fields["bytes"]
    flag, prime = "--prime", args.prime
    if args.prime_file is not None:
        flag, prime = "--prime-file", read_prime_file(args.prime_file, fields)
    elif prime is not None and bytes_mode:
        prime = os.fsencode(prime).decode("latin-1")
    if prime is not None:
        missing = sorted(set(prime) - set(model.char_to_ix))
        if missing:
            what = "bytes" if bytes_mode else "characters"
            raise CLIError(f"{flag} has {what} that are not in the model's vocabulary: "
                           f"{_unknown_chars(missing[:50], bytes_mode)}")
    return prime


def _cmd_sample(args):
    model, meta = _load(args.checkpoint)
    fields = _meta_fields(meta, args.checkpoint)
    bytes_mode = fields["bytes"]
    prime = _sample_prime(args, model, fields)
    seed = args.seed
    if seed is not None and not 0 <= seed < 2**32:
        raise CLIError(f"--seed must be in [0, 2**32), got {seed}")
    start_char = _start_char(args, model, bytes_mode, prime)
    # the samples draw one after the other from one stream: the seed's, or the model's
    rng = model.rng if seed is None else np.random.RandomState(seed)
    out = ""
    for i in range(args.num_samples):
        out += (SAMPLE_SEPARATOR if i else "") + (prime or start_char or "")
        for ch in model.generate(args.length, prime=prime, temperature=args.temperature,
                                 greedy=args.greedy, top_k=args.top_k, seed=rng,
                                 top_p=args.top_p, start=args.start, start_char=start_char):
            out += ch
            if len(out) >= 4096:
                write_text(out, bytes_mode)
                out = ""
    if sys.stdout.isatty() and not bytes_mode:
        out += "\n"
    write_text(out, bytes_mode)
    return 0


def _cmd_eval(args):
    model, meta = _load(args.checkpoint)
    options = {name: value for name, value in _meta_fields(meta, args.checkpoint).items()
               if name in dict(TEXT_OPTIONS)}
    if args.encoding is not None:
        if options["bytes"]:
            raise CLIError(f"{args.checkpoint} is a --bytes model: it reads the file as raw "
                           f"bytes, so --encoding {args.encoding} does not apply; leave it out")
        options["encoding"] = args.encoding
        _text_options_valid(options)
    scan = scan_text(args.file, options, args.file)
    missing = sorted(set(scan.chars) - set(model.chars))
    if missing:
        raise CLIError(f"{args.file}: {len(missing)} character(s) are not in the vocabulary: "
                       f"{''.join(missing[:50])!r}")
    if scan.length < 2:
        raise CLIError(f"{args.file}: the text needs at least two characters to evaluate a "
                       f"prediction")
    start = args.start or model.default_start
    nats = model.evaluate(encode_text(args.file, options, args.file, model.chars, scan),
                          start=start)
    print(f"{args.file}: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char "
          f"({scan.length:,} characters) from {_STARTS[start]}")
    return 0


def _cmd_history(args):
    model, _ = _load(args.checkpoint)
    if args.output is None:
        model.history.to_csv(sys.stdout)
        sys.stdout.flush()
        return 0
    check_output(args.output, "CSV file", [("the checkpoint", args.checkpoint)])
    try:
        model.history.to_csv(args.output)
    except OSError as e:
        raise CLIError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


#: The first iterations left out of the automatic y-range (the loss of untrained
#: weights, and the first updates' spikes): this fraction of the history.
PLOT_SKIP = 0.02
#: Figure size of ``charrnn plot``, inches.
PLOT_SIZE = (8, 4.5)


def _plot_units(model, units):
    """Factors from a sequence's loss (nats) and from bits/char to ``units``; its label."""
    T = model.seq_length
    if units == "bits":
        return 1.0 / (T * math.log(2)), 1.0, "bits per character"
    return 1.0, T * math.log(2), f"nats per sequence of {T} characters (the seeds' loss)"


def _plot_range(smooth, val, log_y, raw=None):
    """A y-range that shows the useful part: the smooth and validation losses after the
    first :data:`PLOT_SKIP` of the iterations, and the raw loss's 1st to 99th
    percentiles there if it is given, with a margin. ``val`` as (x, y)."""
    skip = int(len(smooth) * PLOT_SKIP)
    values = np.concatenate([smooth[skip:], val[1][val[0] > skip]] +
                            ([] if raw is None else [np.percentile(raw[skip:], [1, 99])]))
    keep = np.isfinite(values)
    if log_y:
        keep &= values > 0
    values = values[keep]
    if not values.size:
        return None
    lo, hi = float(values.min()), float(values.max())
    if log_y:
        pad = (hi / lo) ** 0.05 if hi > lo else 1.1
        return lo / pad, hi * pad
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * abs(hi) or 0.5
    return lo - pad, hi + pad


def _raw_is_a_band(raw, smooth, ylim, log_y, pixels):
    """Whether the raw loss would draw as a solid band hiding the smooth one: many
    points per pixel, spread over more than half the y-range."""
    if ylim is None or len(raw) <= pixels:
        return False
    lo, hi = ylim
    if log_y:
        tiny = np.finfo(np.float64).tiny
        raw, smooth = np.log(np.maximum(raw, tiny)), np.log(np.maximum(smooth, tiny))
        lo, hi = math.log(lo), math.log(hi)
    skip = int(len(raw) * PLOT_SKIP)
    spread = np.subtract(*np.percentile(raw[skip:] - smooth[skip:], [90, 10]))
    return spread > 0.5 * (hi - lo)


def _cmd_plot(args):
    model, _ = _load(args.checkpoint)
    check_output(args.output, "image", [("the checkpoint", args.checkpoint)])
    if args.ylim is not None:
        lo, hi = args.ylim
        if not lo < hi:
            raise CLIError(f"--ylim {lo:g} {hi:g}: the lower limit must be below the upper")
        if args.log_y and lo <= 0:
            raise CLIError(f"--ylim {lo:g} {hi:g} with --log-y: the limits must be above 0")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError("charrnn plot needs matplotlib: pip install 'charrnn-cython[plot]' "
                       "(or pip install matplotlib)") from None
    h = model.history
    if len(h) == 0:
        raise CLIError(f"{args.checkpoint} has no training history to plot")
    per_seq, per_bit, label = _plot_units(model, args.units)
    x, raw, smooth = h.iteration + 1, h.loss * per_seq, h.smooth_loss * per_seq
    val = (h.val_iteration, h.val_loss * per_bit)
    ylim = args.ylim or _plot_range(smooth, val, args.log_y)
    draw_raw = args.raw
    if draw_raw is None:
        pixels = 0.8 * PLOT_SIZE[0] * args.dpi  # about the axes' width
        draw_raw = not _raw_is_a_band(raw, smooth, ylim, args.log_y, pixels)
    if draw_raw and args.ylim is None:
        ylim = _plot_range(smooth, val, args.log_y, raw)
    fig, ax = plt.subplots(figsize=PLOT_SIZE)
    if draw_raw:
        ax.plot(x, raw, "C0", lw=0.5, alpha=0.4, label="loss")
    ax.plot(x, smooth, "C1", lw=1.5, label="smooth loss")
    if len(h.val_loss):
        ax.plot(*val, "C2o-", ms=3, label="validation loss")
    if args.log_y:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
        if args.log_y and ylim[1] < 10 * ylim[0]:  # within a decade: plain numbers
            from matplotlib.ticker import ScalarFormatter
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("iteration")
    ax.set_ylabel(label)
    ax.set_title(f"{os.path.basename(args.checkpoint)}: hidden size {model.hidden_size}, "
                 f"{model.optimizer}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=args.dpi)
    except OSError as e:
        raise CLIError(f"cannot write {args.output}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


# -- the parser -----------------------------------------------------------------------------

_positive_int = _argument(int, "an integer", lambda v: v >= 1, ">= 1")
_dropout = _argument(float, "a number", lambda v: 0 <= v < 1, ">= 0 and < 1")
_lr_decay = _argument(float, "a number", lambda v: 0 < v <= 1, "> 0 and <= 1")
_nonnegative_float = _argument(float, "a number", lambda v: math.isfinite(v) and v >= 0,
                               ">= 0 and finite")
_nonnegative_int = _argument(int, "an integer", lambda v: v >= 0, ">= 0")
_count = _argument(int, "an integer", lambda v: 0 <= v < MAX_COUNT, ">= 0 and < 2**62")
_sample_length = _argument(int, "an integer", lambda v: 0 <= v <= MAX_SAMPLE_LENGTH,
                           f">= 0 and <= {MAX_SAMPLE_LENGTH:,} (charrnn sample writes "
                           f"longer texts)")
_dpi = _argument(int, "an integer", lambda v: 1 <= v <= MAX_DPI, f">= 1 and <= {MAX_DPI}")
_positive_float = _argument(float, "a number", lambda v: math.isfinite(v) and v > 0,
                            "a finite number > 0")
_finite_float = _argument(float, "a number", math.isfinite, "finite")
_probability_mass = _argument(float, "a number", lambda v: 0 < v <= 1, "> 0 and <= 1")
_synthetic_size = _argument(int, "an integer", lambda v: 1 <= v <= _datasets.MAX_SYMBOLS,
                            f">= 1 and <= {_datasets.MAX_SYMBOLS:,}")
_seed32 = _argument(int, "an integer", lambda v: 0 <= v < 2**32, ">= 0 and < 2**32")


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _clip(text):
    if text.lower() in ("none", "off", "0"):
        return 0.0
    return _positive_float(text)


def _add_train(sub):
    p = sub.add_parser(
        "train", help="train on a text file, with checkpoints and progress",
        description="Train a character-level RNN on a text file (the seeds' main loop) and "
                    "print progress and a sample. With --checkpoint it saves as it goes and "
                    "on Ctrl-C; --resume continues exactly where a checkpoint stopped. "
                    "Defaults in [brackets].")
    text_file_argument(p)
    m = p.add_argument_group("model and optimizer (on --resume: taken from the checkpoint)")
    m.add_argument("--hidden-size", metavar="N", type=_positive_int, help="hidden units H [100]")
    m.add_argument("--seq-length", metavar="T", type=_positive_int,
                   help="characters per iteration, steps of back-propagation T [25]")
    m.add_argument("--learning-rate", metavar="LR", type=_positive_float, help="[0.1]")
    m.add_argument("--optimizer", choices=sorted(check.OPTIMIZERS), help="[adagrad]")
    m.add_argument("--activation", choices=sorted(check.ACTIVATIONS), help="[tanh]")
    m.add_argument("--clip", metavar="CLIP", type=_clip,
                   help="clip gradients to [-CLIP, CLIP]; 'none' or 0: no clipping [5]")
    m.add_argument("--bptt", choices=sorted(check.BPTT),
                   help="'none': Elman's simple recurrent network [full]")
    m.add_argument("--reset-each-epoch", action="store_const", const=True,
                   help="with --epochs: zero the hidden state at each epoch (seed 004)")
    m.add_argument("--reset-every", metavar="N", type=_count,
                   help="zero the hidden state of every stream before each iteration whose "
                        "number is a multiple of N, so that the model learns to start from "
                        "zero (then eval, --prime and validation start from zero); 0: only "
                        "when the pointer wraps, the seeds' loop [0]")
    m.add_argument("--dtype", choices=sorted(check.DTYPES), help="[float64]")
    m.add_argument("--beta1", metavar="B", type=float, help="Adam [0.9]")
    m.add_argument("--beta2", metavar="B", type=float, help="Adam [0.999]")
    m.add_argument("--decay-rate", metavar="R", type=float, help="RMSProp [0.95]")
    m.add_argument("--eps", metavar="EPS", type=_positive_float, help="Adam and RMSProp [1e-8]")
    m.add_argument("--seed", metavar="N", type=_nonnegative_int, help="seed of the weights [0]")
    m.add_argument("--batch-size", metavar="B", type=_positive_int,
                   help="minibatch streams, each a contiguous piece of the text with its own "
                        "hidden state; the gradient is summed over them [1: the seeds' loop]")
    m.add_argument("--cell", choices=list(_nets.CELLS),
                   help="PyTorch's RNN (tanh), LSTM or GRU; 'rnn' with one layer and no "
                        "dropout is the seeds' model [rnn]")
    m.add_argument("--num-layers", metavar="L", type=_positive_int, help="stacked layers [1]")
    m.add_argument("--dropout", metavar="P", type=_dropout,
                   help="drop a layer's outputs to the next layer and the decoder with this "
                        "probability, in training [0]")
    m.add_argument("--clip-norm", metavar="NORM", type=_positive_float,
                   help="then scale the gradient down to this global norm [none]")
    m.add_argument("--lr-schedule", choices=sorted(SCHEDULES),
                   help="learning rate of each update: cosine decays to --min-lr by "
                        "--decay-iters (nanoGPT), step multiplies by --lr-decay every "
                        "--decay-every (char-rnn) [constant]")
    m.add_argument("--warmup-iters", metavar="N", type=_count,
                   help="linear warmup over the first N updates [0]")
    m.add_argument("--decay-iters", metavar="N", type=_positive_int,
                   help="cosine: the update at which the rate reaches --min-lr [the run's "
                        "iterations]")
    m.add_argument("--min-lr", metavar="LR", type=_nonnegative_float,
                   help="cosine: the final rate [LR/10]")
    m.add_argument("--lr-decay", metavar="F", type=_lr_decay, help="step: the factor [0.97]")
    m.add_argument("--decay-every", metavar="N", type=_positive_int,
                   help="step: updates between decays [1000]")
    p.add_argument("--threads", metavar="N", type=_positive_int,
                   help="threads for the minibatch streams (results do not depend on it) "
                        "[the cores available]")
    p.add_argument("--preset", choices=sorted(_presets.PRESETS),
                   help="fill in a tuned set of options (options given on the command line "
                        "override it): " + _presets.describe())
    r = p.add_argument_group("how long (a total, counted from the start of training)")
    how = r.add_mutually_exclusive_group()
    how.add_argument("--iterations", metavar="N", type=_count,
                     help="iterations of the seeds' loop [5000; on --resume: the "
                          "checkpoint's target]")
    how.add_argument("--epochs", metavar="N", type=_count,
                     help="instead: passes over the text in consecutive chunks (seed 002)")
    r.add_argument("--time", metavar="SECONDS", type=_positive_float,
                   help="also stop after this many seconds of training (then the final "
                        "checkpoint, validation and sample as at the end)")
    t = p.add_argument_group("text (on --resume: taken from the checkpoint)")
    t.add_argument("--encoding", metavar="ENC", help="encoding of FILE [utf-8]")
    t.add_argument("--bytes", action="store_const", const=True,
                   help="train on raw bytes: the vocabulary is byte values")
    t.add_argument("--lower", action="store_const", const=True, help="lower-case the text")
    t.add_argument("--strip-digits", action="store_const", const=True,
                   help="remove digits")
    t.add_argument("--drop-chars", metavar="CHARS", help="remove these characters")
    t.add_argument("--clean", choices=sorted(_data.CLEANUPS),
                   help="a named clean-up: seed002 is seed 002's --lower --strip-digits "
                        "--drop-chars '" + _data.SEED002_DROP_CHARS.replace("\ufeff", "")
                        .replace("%", "%%") + "' and U+FEFF (the byte-order mark)")
    t.add_argument("--synthetic", choices=sorted(_datasets.SYNTHETIC),
                   help="instead of FILE, train on a synthetic text: seed004 is seed 004's "
                        "'ae', 'buu', 'ciii' words (charrnn.datasets.seed004)")
    t.add_argument("--synthetic-size", metavar="N", type=_synthetic_size,
                   help="words of the --synthetic text [10000]")
    t.add_argument("--synthetic-seed", metavar="N", type=_seed32,
                   help="seed of the --synthetic text's draws [0]")
    t.add_argument("--val-frac", metavar="FRAC", type=_fraction,
                   help=f"hold out this fraction of the end of the text for validation "
                        f"[{DEFAULT_VAL_FRAC} for texts of {MIN_TEXT_FOR_VAL:,} characters "
                        f"or more, else 0]")
    o = p.add_argument_group("progress, validation and checkpoints")
    o.add_argument("--print-every", metavar="N", type=_positive_int,
                   help="print a progress line every N iterations [1000]")
    o.add_argument("--eval-every", metavar="N", type=_positive_int,
                   help="validation loss every N iterations [--print-every; on --resume: the "
                        "checkpoint's]")
    o.add_argument("--sample-every", metavar="N", type=_positive_int,
                   help="print a sample every N iterations [only at the end]")
    o.add_argument("--sample-length", metavar="N", type=_sample_length, default=200,
                   help=f"characters per sample, at most {MAX_SAMPLE_LENGTH:,} "
                        f"[%(default)s]")
    o.add_argument("--checkpoint", metavar="PATH",
                   help="save to this .npz as training goes, at the end and on Ctrl-C")
    o.add_argument("--checkpoint-every", metavar="N", type=_positive_int, default=1000,
                   help="with --checkpoint: save every N iterations [%(default)s]")
    o.add_argument("--keep-best", action="store_true",
                   help="with --checkpoint and validation: also keep the checkpoint of the "
                        "best validation loss, as PATH with .best before its extension")
    o.add_argument("--resume", metavar="PATH",
                   help="continue training from this checkpoint, on the same text (FILE defaults "
                        "to the checkpoint's) and saving to it unless --checkpoint is given")
    o.add_argument("--quiet", action="store_true", help="print nothing but errors")
    f = p.add_argument_group(
        "fine-tuning (char-rnn's -init_from)",
        "Start from the weights of a checkpoint: its model options (hidden size, cell, "
        "layers, dropout, activation, dtype) and vocabulary are kept, training options "
        "not given are its own (except --decay-iters), text options not given too; the "
        "iteration count, history, pointer, state and optimizer start fresh.")
    f.add_argument("--init-from", metavar="CKPT",
                   help="fine-tune the model of this checkpoint on FILE (not with --resume)")
    f.add_argument("--keep-optimizer", action="store_true",
                   help="with --init-from: keep the checkpoint's optimizer state (m1, m2)")
    f.add_argument("--extend-vocab", action="store_true",
                   help="with --init-from: add FILE's characters that the checkpoint lacks "
                        "(new weights drawn as a new model's; else such characters are an "
                        "error)")
    p.set_defaults(func=_cmd_train)


def args_file_line(line):
    """The arguments of one line of an ``@file``: split as a shell splits (quotes
    group, ``#`` starts a comment); a blank or comment line gives none."""
    return shlex.split(line, comments=True)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse reading ``@file`` lines with :func:`args_file_line`."""

    def convert_arg_line_to_args(self, arg_line):
        return args_file_line(arg_line)


def expand_args_files(argv, depth=0):
    """``argv`` with each ``@file`` replaced by the arguments in that file.

    What argparse's ``fromfile_prefix_chars="@"`` does, with bounds and one-line errors:
    a regular file of at most ``MAX_ARGS_FILE_BYTES`` of UTF-8, ``@file`` lines in it
    read in turn, at most ``MAX_ARGS_FILE_DEPTH`` deep.
    """
    out = []
    for arg in argv:
        if not arg.startswith("@"):
            out.append(arg)
            continue
        path = arg[1:]
        if depth >= MAX_ARGS_FILE_DEPTH:
            raise CLIError(f"{arg}: options files nest more than {MAX_ARGS_FILE_DEPTH} deep "
                           f"(does one name itself?)")
        with _reading(path, "options file", "an options file"):
            with _data.open_regular(path) as f:
                raw = f.read(MAX_ARGS_FILE_BYTES + 1)
        if len(raw) > MAX_ARGS_FILE_BYTES:
            raise CLIError(f"options file {path} is longer than {MAX_ARGS_FILE_BYTES:,} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CLIError(f"options file {path} is not valid UTF-8 (byte offset "
                           f"{e.start})") from None
        args = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                args += args_file_line(line)
            except ValueError as e:
                raise CLIError(f"options file {path}, line {number}: {e}") from None
        out += expand_args_files(args, depth + 1)
    return out


def build_parser():
    """The ``charrnn`` argument parser, one subparser per command.

    An argument ``@FILE`` stands for the arguments in FILE (:func:`args_file_line`).
    """
    parser = _ArgumentParser(
        prog="charrnn", fromfile_prefix_chars="@",
        description="Character-level vanilla RNN language models (min-char-rnn) on compiled "
                    "kernels. 'charrnn COMMAND --help' describes each command. An argument "
                    "@FILE stands for the options in FILE: split as a shell splits, one or "
                    "more a line, '#' comments and blank lines allowed.")
    parser.add_argument("--version", action="version", version=f"charrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)

    p = sub.add_parser(
        "sample", help="sample text from a checkpoint",
        description="Sample text from a checkpoint and write it (the prime, then the new "
                    "characters) to stdout, nothing else. Without --seed it continues the "
                    "checkpoint's own random state, so the same checkpoint gives the same text.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", help=".npz written by charrnn train --checkpoint or model.save")
    p.add_argument("--length", "-n", metavar="N", type=_nonnegative_int, default=500,
                   help="characters to sample")
    primes = p.add_mutually_exclusive_group()
    primes.add_argument("--prime", metavar="TEXT",
                        help="warm the hidden state on this text before sampling")
    primes.add_argument("--prime-file", metavar="PATH",
                        help=f"the same with the text of a file ('-': stdin), read with the "
                             f"checkpoint's text options, at most {MAX_PRIME_BYTES:,} bytes")
    p.add_argument("--temperature", "-t", metavar="T", type=_positive_float, default=1.0,
                   help="below 1: safer, above 1: more surprising")
    p.add_argument("--greedy", action="store_true",
                   help="always the most likely character (argmax)")
    p.add_argument("--top-k", type=_positive_int, metavar="K",
                   help="draw only among the K most likely characters")
    p.add_argument("--top-p", type=_probability_mass, metavar="P",
                   help="then only among the fewest most likely characters whose "
                        "probabilities reach P (nucleus sampling)")
    p.add_argument("--num-samples", "-N", metavar="N", type=_positive_int, default=1,
                   help="independent samples from the same start, drawn one after the "
                        "other, separated by a line '---'")
    p.add_argument("--seed", metavar="N", type=_nonnegative_int, help="seed of the draws")
    p.add_argument("--start-char", metavar="C",
                   help="the first input, one character of the vocabulary, fed after the "
                        "state training carried (as the seeds' training-time samples); "
                        "printed before the sample; instead of --prime")
    p.add_argument("--start", choices=STARTS,
                   help="the state sampling starts from (before --prime): the one training "
                        "carried, or zeros (default: with --prime, 'zero' for models trained "
                        "with --reset-every, else 'carried'; without, 'carried')")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "eval", help="loss of a checkpoint on a text",
        description="Average loss per character (nats and bits) of a checkpoint on a text, "
                    "read with the checkpoint's text options.")
    p.add_argument("checkpoint")
    p.add_argument("file", help="text to evaluate on")
    p.add_argument("--encoding", metavar="ENC", help="encoding of FILE (default: the checkpoint's)")
    p.add_argument("--start", choices=STARTS,
                   help="the state before the text's first character: the one training "
                        "carried, or zeros (default: 'zero' for models trained with "
                        "--reset-every, else 'carried')")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "plot", help="plot the loss history of a checkpoint (needs matplotlib)",
        description="Plot loss, smooth loss and validation loss (bits per character, or "
                    "nats per sequence) against iterations. Needs matplotlib: pip install "
                    "'charrnn-cython[plot]'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", default="loss.png", help="image to write (.png, .pdf, .svg)")
    p.add_argument("--dpi", metavar="DPI", type=_dpi, default=120,
                   help=f"resolution, at most {MAX_DPI}")
    p.add_argument("--units", choices=("bits", "nats-per-seq"), default="bits",
                   help="bits per character, or nats per sequence (the loss as the seeds "
                        "print it)")
    p.add_argument("--ylim", metavar=("LO", "HI"), nargs=2, type=_finite_float,
                   help="y-axis range (default: that of the smooth and validation losses "
                        f"after the first {PLOT_SKIP * 100:g}%% of the iterations)")
    p.add_argument("--log-y", action="store_true", help="logarithmic y-axis")
    p.add_argument("--raw", action=argparse.BooleanOptionalAction,
                   help="draw the loss of each iteration behind the smooth loss (default: "
                        "unless it would draw as a solid band)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "history", help="print the loss history of a checkpoint as CSV",
        description="Print the training history of a checkpoint as CSV: a header, then "
                    "iteration (iterations done), loss and smooth_loss (nats per sequence, "
                    "as the seeds print them) and val_loss (bits per character, empty "
                    "where there is none), one row per iteration.")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="write the CSV to this file instead of stdout")
    p.set_defaults(func=_cmd_history)

    _add_tune(sub)  # charrnn.tune imports ray only when a sweep runs

    try:
        from . import bench
        add_arguments, run = bench.add_arguments, bench.run
    except (ImportError, AttributeError):
        pass
    else:
        p = sub.add_parser(
            "bench", help="speed of charrnn against the numpy reference",
            description="Training and sampling speed of charrnn against charrnn.reference.")
        add_arguments(p)
        p.set_defaults(func=run)
    return parser




def _silence_stdout():
    """Point stdout at /dev/null: a closed pipe must not fail again at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv=None):
    """Run the ``charrnn`` command line; returns the exit status."""
    try:
        argv = expand_args_files(sys.argv[1:] if argv is None else list(argv))
    except CLIError as e:
        _note(f"charrnn: error: {e}")
        return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (charrnn sample | head): not an error
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        _note("charrnn: interrupted")
        return EXIT_INTERRUPTED
    except EXPECTED as e:
        if isinstance(e, _OutputError):
            _silence_stdout()
        _note(f"charrnn: error: {describe(e)}")
        return 2
