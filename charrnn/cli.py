"""The ``charrnn`` command line."""
import argparse
import sys
import time

from . import data as _data
from .model import train


def _read_text(path):
    if path is None:
        return _data.default_corpus()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise SystemExit(f"charrnn: no such file: {path}") from None
    except IsADirectoryError:
        raise SystemExit(f"charrnn: {path} is a directory, not a text file") from None
    except UnicodeDecodeError as e:
        raise SystemExit(f"charrnn: {path} is not UTF-8 text (byte offset {e.start})") from None


def _cmd_train(args):
    text = _read_text(args.file)
    start = time.perf_counter()

    def progress(model):
        if not args.quiet:
            print(f"iter {model.iteration}, loss: {model.smooth_loss:f}", flush=True)

    model = train(text, hidden_size=args.hidden_size, seq_length=args.seq_length,
                  learning_rate=args.learning_rate, num_iterations=args.iterations,
                  seed=args.seed, callback=progress, report_every=args.print_every)
    elapsed = time.perf_counter() - start
    if not args.quiet:
        rate = model.iteration * model.seq_length / max(elapsed, 1e-9)
        print(f"trained {model.iteration} iterations in {elapsed:.2f} s "
              f"({rate:,.0f} characters/s)")
        print("----")
        print(model.sample(args.sample_length))
        print("----")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="charrnn", description="Character-level vanilla RNN language models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train on a text file and print a sample")
    p.add_argument("file", nargs="?", help="UTF-8 text file (default: the shipped corpus)")
    p.add_argument("--hidden-size", type=int, default=100)
    p.add_argument("--seq-length", type=int, default=25)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--print-every", type=int, default=1000)
    p.add_argument("--sample-length", type=int, default=200)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=_cmd_train)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, IndexError, FloatingPointError) as e:
        print(f"charrnn: error: {e}", file=sys.stderr)
        return 2
