"""The ``charrnn`` command line: ``train``, ``sample``, ``eval``, ``plot`` (and ``bench``).

Only this module writes to the terminal. Errors are one line, ``charrnn: error: ...``
on stderr, with exit status 2; an interrupted ``train`` exits with 130.
"""
import argparse
import contextlib
import hashlib
import math
import os
import shutil
import signal
import sys
import time

from . import _validate as check
from . import checkpoint as _checkpoint
from . import data as _data
from ._version import __version__
from .model import CharRNN

#: Model options of ``charrnn train``: argparse dest, CharRNN keyword, default.
MODEL_OPTIONS = (
    ("hidden_size", 100), ("seq_length", 25), ("learning_rate", 0.1), ("seed", 0),
    ("activation", "tanh"), ("optimizer", "adagrad"), ("clip", 5.0), ("bptt", "full"),
    ("reset_each_epoch", False), ("dtype", "float64"), ("beta1", 0.9), ("beta2", 0.999),
    ("decay_rate", 0.95), ("eps", 1e-8), ("batch_size", 1),
)
#: Text options of ``charrnn train``, kept in the checkpoint so that ``eval`` and
#: ``--resume`` read text the same way.
TEXT_OPTIONS = (("encoding", "utf-8"), ("bytes", False), ("lower", False),
                ("strip_digits", False), ("drop_chars", ""))

#: Below this many characters, ``--val-frac`` defaults to 0 (5% would be too few).
MIN_TEXT_FOR_VAL = 20_000
DEFAULT_VAL_FRAC = 0.05

EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """An error to report as one ``charrnn: error: ...`` line."""


# -- text input ---------------------------------------------------------------------------

@contextlib.contextmanager
def _reading(path, noun, what):
    """Errors of reading ``path`` as one-line CLIErrors ("no such file: x.txt")."""
    try:
        yield
    except FileNotFoundError:
        raise CLIError(f"no such {noun}: {path}") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a directory, not {what}") from None
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror or e}") from None


def read_text(path, options):
    """The text of ``path`` (None: the shipped corpus), decoded and preprocessed.

    ``options`` has the keys of :data:`TEXT_OPTIONS`. In bytes mode each byte is one
    character (decoded as latin-1), and the preprocessing works on bytes (ASCII
    letters and digits only).
    """
    if path is None:
        if options["bytes"]:
            raw = _data.default_corpus().encode("utf-8")
        else:
            return preprocess(_data.default_corpus(), options)
    else:
        with _reading(path, "file", "a text file"):
            with open(path, "rb") as f:
                raw = f.read()
    if options["bytes"]:
        raw = raw.lower() if options["lower"] else raw
        if options["strip_digits"]:
            raw = raw.translate(None, b"0123456789")
        if options["drop_chars"]:
            raw = raw.translate(None, os.fsencode(options["drop_chars"]))
        return raw.decode("latin-1")
    encoding = options["encoding"]
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise CLIError(f"unknown encoding: {encoding}") from None
    except UnicodeDecodeError as e:
        bad = e.object[e.start:e.end]
        raise CLIError(
            f"{path} is not valid {encoding}: byte 0x{bad[:1].hex()} at byte offset {e.start} "
            f"({e.reason}); give the file's encoding with --encoding, or train on raw "
            f"bytes with --bytes") from None
    return preprocess(text, options)


def preprocess(text, options):
    """Seed 002's clean-up: ``--lower``, ``--strip-digits``, ``--drop-chars``."""
    if options["lower"]:
        text = text.lower()
    if options["strip_digits"]:
        text = "".join(c for c in text if not c.isdigit())
    if options["drop_chars"]:
        text = text.translate({ord(c): None for c in options["drop_chars"]})
    return text


def text_digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def split_validation(text, val_frac):
    """``(train_text, val_text)``: the last ``val_frac`` of the text is held out."""
    n_val = int(round(len(text) * val_frac))
    if val_frac > 0 and n_val < 2:
        raise CLIError(f"--val-frac {val_frac} holds out {n_val} of {len(text)} characters; "
                       f"validation needs at least 2 (use a larger fraction, or 0)")
    return text[:len(text) - n_val], text[len(text) - n_val:]


# -- terminal output ----------------------------------------------------------------------

class Console:
    """Progress lines on stdout: rewritten in place on a terminal, plain lines when piped."""

    def __init__(self, quiet, stream=None):
        self.quiet = quiet
        self.stream = sys.stdout if stream is None else stream
        self.tty = self.stream.isatty()
        self.pending = False  # a progress line without its newline

    def progress(self, line):
        if self.quiet:
            return
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            self.stream.write("\r" + line[:max(width, 20)] + "\x1b[K")
            self.pending = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def print(self, text=""):
        if self.quiet:
            return
        self.end_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def end_line(self):
        if self.pending:
            self.stream.write("\n")
            self.pending = False


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


def _clock(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# -- train --------------------------------------------------------------------------------

class _Interrupt:
    """SIGINT sets a flag that the training loop reads between compiled chunks.

    The default handler would raise KeyboardInterrupt at any bytecode, possibly while
    the model's state is half updated; a flag lets the loop stop at a clean point and
    save. A second Ctrl-C gets the default behaviour back.
    """

    def __init__(self):
        self.flag = False
        self.previous = None

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.flag = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


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


def _text_options(args, saved=None):
    out = {}
    for name, default in TEXT_OPTIONS:
        given = getattr(args, name)
        if saved is None:
            out[name] = default if given is None else given
            continue
        value = saved.get(name, default)
        if given is not None and given != value:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{args.resume} was trained with {flag} {value!r}, not {given!r}; "
                           f"leave {flag} out when resuming")
        out[name] = value
    if out["bytes"] and out["encoding"] != "utf-8":
        raise CLIError("--bytes and --encoding exclude each other")
    return out


def _checkpoint_paths(path):
    root, ext = os.path.splitext(path)
    return path, f"{root}.best{ext or '.npz'}"


def _check_writable(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write checkpoint {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"cannot write checkpoint {path}: folder {folder} is not writable")
    if os.path.isdir(path):
        raise CLIError(f"cannot write checkpoint {path}: it is a directory")


def _save(model, path, meta):
    try:
        _checkpoint.save(model, path, meta=meta)
    except OSError as e:
        raise CLIError(e.strerror or str(e)) from None  # names the checkpoint


def _cmd_train(args):
    console = Console(args.quiet)
    if args.resume and not args.checkpoint:
        args.checkpoint = args.resume  # keep saving where it came from
    if args.keep_best and not args.checkpoint:
        raise CLIError("--keep-best needs --checkpoint PATH (the best one is kept beside it)")
    if args.checkpoint:
        _check_writable(args.checkpoint)

    saved_meta = model = None
    if args.resume:
        model, saved_meta = _load(args.resume)
        saved = {name: getattr(model, name) for name, _ in MODEL_OPTIONS}
        saved["dtype"] = model.dtype.name
        options = _model_options(args, saved)
        text_options = _text_options(args, saved_meta)
    else:
        options = _model_options(args)
        text_options = _text_options(args)

    source = args.file
    if source is None and saved_meta is not None:
        source = saved_meta.get("source")
    text = read_text(source, text_options)
    if not text:
        raise CLIError("the text is empty (after preprocessing)")
    if args.val_frac is not None:
        val_frac = args.val_frac
        if saved_meta is not None and "val_frac" in saved_meta and val_frac != saved_meta[
                "val_frac"]:
            raise CLIError(f"{args.resume} was trained with --val-frac "
                           f"{saved_meta['val_frac']}; leave --val-frac out when resuming")
    elif saved_meta is not None and "val_frac" in saved_meta:
        val_frac = saved_meta["val_frac"]
    else:
        val_frac = DEFAULT_VAL_FRAC if len(text) >= MIN_TEXT_FOR_VAL else 0.0
    train_text, val_text = split_validation(text, val_frac)
    if args.keep_best and not val_text:
        raise CLIError("--keep-best needs validation text (a --val-frac above 0)")
    digest = text_digest(text)
    # the validation schedule is part of the history, so a resumed run keeps it
    eval_every = args.eval_every
    if eval_every is None and saved_meta is not None:
        eval_every = saved_meta.get("eval_every")
    if eval_every is None:
        eval_every = args.print_every

    if model is None:
        model = CharRNN(_data.vocabulary(text), **options)
    elif saved_meta.get("text_sha256", digest) != digest:
        raise CLIError(f"this text differs from the one {args.resume} was trained on; "
                       f"resuming needs the same file and options (to continue on another "
                       f"text, use the Python API: charrnn.load(path).set_text(text))")
    model.set_text(train_text)
    if args.threads is not None:
        model.num_threads = args.threads  # how fast, not what: free to change on resume

    # what to run: a total number of iterations, counted from the start of training
    target = dict(saved_meta.get("target", {})) if saved_meta else {}
    if args.epochs is not None:
        target = {"epochs": args.epochs}
    elif args.iterations is not None:
        target = {"iterations": args.iterations}
    elif not target:
        target = {"iterations": 5000}
    schedule = "epochs" if "epochs" in target else "iterations"
    if model.schedule is not None and model.iteration > 0 and model.schedule != schedule:
        raise CLIError(f"{args.resume} was trained by {model.schedule}; give "
                       f"--{model.schedule} to continue it")
    if schedule == "epochs":
        total = target["epochs"] * model.iterations_per_epoch()
    else:
        total = target["iterations"]

    meta = dict(text_options, val_frac=val_frac, eval_every=eval_every, text_sha256=digest,
                target=target,
                source=None if source is None else os.path.abspath(source),
                version=__version__)
    latest, best_path = _checkpoint_paths(args.checkpoint) if args.checkpoint else (None, None)
    best = min(model.history.val_loss, default=math.inf)
    bytes_mode = text_options["bytes"]

    def val_bits():
        return model.evaluate(val_text) / math.log(2)

    def sample_line(seed):
        return show(model.sample(args.sample_length, seed=seed), bytes_mode)

    if not args.quiet:
        held = f", {len(val_text):,} held out for validation" if val_text else ""
        what = (f"{target['epochs']} epochs ({total} iterations)" if schedule == "epochs"
                else f"{total} iterations")
        start = f"resuming at iteration {model.iteration} of " if args.resume else ""
        console.print(f"charrnn: {model.vocab_size} characters, hidden size "
                      f"{model.hidden_size}, {len(train_text):,} training characters{held}; "
                      f"{start}{what}")

    intervals = [k for k in (args.print_every, eval_every if val_text else None,
                             args.sample_every, args.checkpoint_every if latest else None) if k]
    chars_per_iteration = model.seq_length * model.batch_size
    stream_length = len(train_text) // model.batch_size
    chunk = 16  # iterations per compiled call, adapted to about 0.1 s
    t_start, it_start = time.perf_counter(), model.iteration
    t_print, it_print = t_start, model.iteration
    last_val = model.history.val_loss[-1] if len(model.history.val_loss) else None
    with _Interrupt() as interrupt:
        while model.iteration < total and not interrupt.flag:
            it = model.iteration
            stop = min([total, it + chunk] + [(it // k + 1) * k for k in intervals])
            t0 = time.perf_counter()
            model.fit(stop - it, schedule=schedule)
            dt = time.perf_counter() - t0
            if stop - it == chunk:
                chunk = max(1, min(4 * chunk, int(chunk * 0.1 / max(dt, 1e-6))))
            it = model.iteration
            if val_text and it % eval_every == 0:
                last_val = val_bits()
                model.history.add_val_loss(it, last_val)
                if args.keep_best and last_val < best:
                    best = last_val
                    _save(model, best_path, dict(meta, best=True))
            if it % args.print_every == 0 or it == total:
                now = time.perf_counter()
                rate = (it - it_print) * chars_per_iteration / max(now - t_print, 1e-9)
                iters_per_s = (it - it_start) / max(now - t_start, 1e-9)
                epoch = model.epoch + model.pointer / stream_length
                val = "" if last_val is None else f" | val {last_val:.4f} bits/char"
                console.progress(
                    f"iter {it}/{total} | epoch {epoch:.2f} | loss {model.history.loss[-1]:.4f}"
                    f" | smooth loss {model.smooth_loss:.4f}{val} | {rate:,.0f} chars/s"
                    f" | {_clock((total - it) / iters_per_s)} left")
                t_print, it_print = now, it
            if args.sample_every and it % args.sample_every == 0 and it != total:
                # seeded by the iteration, so that the model's RandomState and a resumed
                # run's samples are those of an uninterrupted run
                console.print(f"---- sample at iteration {it}\n{sample_line(it)}\n----")
            if latest and args.checkpoint_every and it % args.checkpoint_every == 0 \
                    and it != total:
                _save(model, latest, meta)
        if latest:
            _save(model, latest, meta)
    console.end_line()
    if interrupt.flag:
        if not args.quiet:
            where = (f"; saved {latest}, resume with: charrnn train --resume {latest}"
                     if latest else " (nothing saved: there was no --checkpoint)")
            print(f"charrnn: interrupted at iteration {model.iteration}{where}",
                  file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    if not args.quiet:
        elapsed = time.perf_counter() - t_start
        rate = (model.iteration - it_start) * chars_per_iteration / max(elapsed, 1e-9)
        summary = (f"trained {model.iteration - it_start} iterations in {elapsed:.2f} s "
                   f"({rate:,.0f} characters/s), smooth loss {model.smooth_loss:.4f}")
        if val_text:
            summary += f", validation {val_bits():.4f} bits/char"
        console.print(summary)
        if latest:
            console.print(f"checkpoint: {latest}" + (f" (best: {best_path})"
                                                     if args.keep_best else ""))
        console.print("----")
        console.print(sample_line(model.iteration))
        console.print("----")
    return 0


# -- sample, eval, plot -------------------------------------------------------------------

def _load(path):
    with _reading(path, "checkpoint", "a checkpoint"):
        return _checkpoint.load_with_meta(path)


def _cmd_sample(args):
    model, meta = _load(args.checkpoint)
    bytes_mode = meta.get("bytes", False)
    prime = args.prime
    if prime is not None and bytes_mode:
        prime = os.fsencode(prime).decode("latin-1")
    if prime is not None:
        missing = sorted(set(prime) - set(model.char_to_ix))
        if missing and bytes_mode:
            shown = bytes(ord(c) for c in missing)
            raise CLIError(f"--prime has bytes that are not in the model's vocabulary: {shown!r}")
        if missing:
            raise CLIError(f"--prime has characters that are not in the model's vocabulary: "
                           f"{''.join(missing)!r}")
    seed = args.seed
    if seed is not None and not 0 <= seed < 2**32:
        raise CLIError(f"--seed must be in [0, 2**32), got {seed}")
    pieces = model.generate(args.length, prime=prime, temperature=args.temperature,
                            greedy=args.greedy, top_k=args.top_k, seed=seed)
    out = prime or ""
    for ch in pieces:
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
    options = {name: meta.get(name, default) for name, default in TEXT_OPTIONS}
    if args.encoding is not None:
        options["encoding"] = args.encoding
    text = read_text(args.file, options)
    try:
        nats = model.evaluate(text)
    except ValueError as e:
        raise CLIError(f"{args.file}: {e}") from None
    print(f"{args.file}: {nats:.4f} nats/char, {nats / math.log(2):.4f} bits/char "
          f"({len(text):,} characters)")
    return 0


def _cmd_plot(args):
    model, _ = _load(args.checkpoint)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError("charrnn plot needs matplotlib: pip install 'charrnn[plot]' "
                       "(or pip install matplotlib)") from None
    h = model.history
    if len(h) == 0:
        raise CLIError(f"{args.checkpoint} has no training history to plot")
    per_char = 1.0 / (model.seq_length * math.log(2))  # loss of a sequence -> bits/char
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(h.iteration + 1, h.loss * per_char, lw=0.5, alpha=0.4, label="loss")
    ax.plot(h.iteration + 1, h.smooth_loss * per_char, lw=1.5, label="smooth loss")
    if len(h.val_loss):
        ax.plot(h.val_iteration, h.val_loss, "o-", ms=3, label="validation loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("bits per character")
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

def _argument(convert, expected, valid, requirement):
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


_positive_int = _argument(int, "an integer", lambda v: v >= 1, ">= 1")
_nonnegative_int = _argument(int, "an integer", lambda v: v >= 0, ">= 0")
_positive_float = _argument(float, "a number", lambda v: math.isfinite(v) and v > 0,
                            "a finite number > 0")


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
    p.add_argument("file", nargs="?",
                   help="text file to train on (default: the small Shakespeare corpus that "
                        "ships with charrnn)")
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
    m.add_argument("--dtype", choices=sorted(check.DTYPES), help="[float64]")
    m.add_argument("--beta1", metavar="B", type=float, help="Adam [0.9]")
    m.add_argument("--beta2", metavar="B", type=float, help="Adam [0.999]")
    m.add_argument("--decay-rate", metavar="R", type=float, help="RMSProp [0.95]")
    m.add_argument("--eps", metavar="EPS", type=_positive_float, help="Adam and RMSProp [1e-8]")
    m.add_argument("--seed", metavar="N", type=_nonnegative_int, help="seed of the weights [0]")
    m.add_argument("--batch-size", metavar="B", type=_positive_int,
                   help="minibatch streams, each a contiguous piece of the text with its own "
                        "hidden state; the gradient is summed over them [1: the seeds' loop]")
    p.add_argument("--threads", metavar="N", type=_positive_int,
                   help="threads for the minibatch streams (results do not depend on it) "
                        "[the cores available]")
    r = p.add_argument_group("how long (a total, counted from the start of training)")
    how = r.add_mutually_exclusive_group()
    how.add_argument("--iterations", metavar="N", type=_nonnegative_int,
                     help="iterations of the seeds' loop [5000; on --resume: the "
                          "checkpoint's target]")
    how.add_argument("--epochs", metavar="N", type=_nonnegative_int,
                     help="instead: passes over the text in consecutive chunks (seed 002)")
    t = p.add_argument_group("text (on --resume: taken from the checkpoint)")
    t.add_argument("--encoding", metavar="ENC", help="encoding of FILE [utf-8]")
    t.add_argument("--bytes", action="store_const", const=True,
                   help="train on raw bytes: the vocabulary is byte values")
    t.add_argument("--lower", action="store_const", const=True, help="lower-case the text")
    t.add_argument("--strip-digits", action="store_const", const=True,
                   help="remove digits")
    t.add_argument("--drop-chars", metavar="CHARS", help="remove these characters")
    t.add_argument("--val-frac", metavar="FRAC", type=_fraction,
                   help=f"hold out this fraction of the end of the text for validation "
                        f"[{DEFAULT_VAL_FRAC} for texts of {MIN_TEXT_FOR_VAL:,} characters "
                        f"or more, else 0]")
    o = p.add_argument_group("progress, validation and checkpoints")
    o.add_argument("--print-every", metavar="N", type=_positive_int, default=1000,
                   help="print a progress line every N iterations [%(default)s]")
    o.add_argument("--eval-every", metavar="N", type=_positive_int,
                   help="validation loss every N iterations [--print-every; on --resume: the "
                        "checkpoint's]")
    o.add_argument("--sample-every", metavar="N", type=_positive_int,
                   help="print a sample every N iterations [only at the end]")
    o.add_argument("--sample-length", metavar="N", type=_nonnegative_int, default=200,
                   help="characters per sample [%(default)s]")
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
    p.set_defaults(func=_cmd_train)


def build_parser():
    """The ``charrnn`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="charrnn",
        description="Character-level vanilla RNN language models (min-char-rnn) on compiled "
                    "kernels. 'charrnn COMMAND --help' describes each command.")
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
    p.add_argument("--prime", metavar="TEXT",
                   help="warm the hidden state on this text before sampling")
    p.add_argument("--temperature", "-t", metavar="T", type=_positive_float, default=1.0,
                   help="below 1: safer, above 1: more surprising")
    p.add_argument("--greedy", action="store_true",
                   help="always the most likely character (argmax)")
    p.add_argument("--top-k", type=_positive_int, metavar="K",
                   help="draw only among the K most likely characters")
    p.add_argument("--seed", metavar="N", type=_nonnegative_int, help="seed of the draws")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "eval", help="loss of a checkpoint on a text",
        description="Average loss per character (nats and bits) of a checkpoint on a text, "
                    "read with the checkpoint's text options.")
    p.add_argument("checkpoint")
    p.add_argument("file", help="text to evaluate on")
    p.add_argument("--encoding", metavar="ENC", help="encoding of FILE (default: the checkpoint's)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "plot", help="plot the loss history of a checkpoint (needs matplotlib)",
        description="Plot loss, smooth loss and validation loss (bits per character) "
                    "against iterations. Needs matplotlib: pip install 'charrnn[plot]'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", default="loss.png", help="image to write (.png, .pdf, .svg)")
    p.add_argument("--dpi", metavar="DPI", type=_positive_int, default=120)
    p.set_defaults(func=_cmd_plot)

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


def main(argv=None):
    """Run the ``charrnn`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as e:
        message = str(e)
    except _checkpoint.CheckpointError as e:
        message = str(e)
    except BrokenPipeError:
        # the reader went away (charrnn sample | head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ValueError, IndexError, FloatingPointError, OSError) as e:
        message = str(e)
    except KeyboardInterrupt:
        print("charrnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"charrnn: error: {message}", file=sys.stderr)
    return 2
