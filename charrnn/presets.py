"""Tuned option sets for ``charrnn train --preset NAME``.

Each preset fills in options of ``charrnn train`` that the command line leaves out;
options given explicitly win. They were tuned on tinyshakespeare's first 90% (the last
10% held out, as nanoGPT splits it) on a 2-core x86-64 machine; the README shows the
curves and the commands. On a slower machine the ``time`` budget ends the run before
the cosine schedule has decayed, which costs some quality.
"""
from __future__ import annotations

from typing import Any, Dict

__all__ = ["PRESETS", "describe"]

#: name -> (what it is for, {argparse dest: value}).
PRESETS: Dict[str, Any] = {
    "fast": ("the best validation loss in about 90 s on one thread", dict(
        cell="gru", num_layers=1, hidden_size=256, seq_length=50, batch_size=16,
        dtype="float32", optimizer="adam", learning_rate=4e-3, clip=5.0,
        lr_schedule="cosine", decay_iters=13000, iterations=15000, time=90.0, threads=1,
        val_frac=0.1, eval_every=5000, print_every=500)),
    "best": ("the best validation loss in about 15 minutes on two threads", dict(
        cell="gru", num_layers=2, hidden_size=512, seq_length=64, batch_size=32,
        dtype="float32", optimizer="adam", learning_rate=2e-3, clip=5.0, dropout=0.25,
        lr_schedule="cosine", warmup_iters=100, decay_iters=6500, iterations=7000,
        time=900.0, threads=2, val_frac=0.1, eval_every=2000, print_every=200)),
}


def describe() -> str:
    """One line per preset: its purpose and the options it sets, for ``--help``."""
    out = []
    for name, (purpose, options) in PRESETS.items():
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items())
        out.append(f"'{name}': {purpose} ({flags})")
    return "; ".join(out)
