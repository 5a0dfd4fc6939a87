"""mypy checks programs that use charrnn: the package ships ``py.typed`` and stubs of its
compiled modules, and its public functions are annotated."""
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

import charrnn

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install '.[test]'")

# A user's program: every public entry point, results bound to the types they must have.
GOOD = """\
from typing import Iterator, List

import numpy as np

import charrnn
from charrnn import CharRNN, History
from charrnn import _kernels

version: str = charrnn.__version__
text: str = charrnn.default_corpus()[:3000]
chars = sorted(set(text))
ix = [chars.index(ch) for ch in text[:26]]

params = charrnn.init_params(16, len(chars), rng=0)
Wxh: np.ndarray = params[0]
loss, dWxh, dWhh, dWhy, dbh, dby, hprev = charrnn.lossFun(
    ix[:25], ix[1:26], np.zeros((16, 1)), params, clip=None)
total: float = loss + 1.0
grad: np.ndarray = dWxh
ixes: List[int] = charrnn.sample(hprev, ix[0], 20, params, rng=np.random.RandomState(0))

def report(m: CharRNN) -> None:
    pass

model: CharRNN = charrnn.train(text, hidden_size=16, num_iterations=50, seed=1,
                               callback=report, report_every=25)
history: History = model.history
losses: np.ndarray = history.loss
words: str = model.sample(40, prime="th", temperature=0.8, seed=2)
stream: Iterator[str] = model.generate(10, greedy=True)
per_char: float = model.evaluate(text[:500])
same: CharRNN = model.fit(10)
V: int = model.vocab_size
model.save("model.npz")
again: CharRNN = charrnn.load("model.npz")
again.set_text(text)
fast: bool = _kernels.cpu_has_avx2_fma()
info = charrnn.kernel_info()
variant: str = info["variant"]
print(total, words, per_char, V, "".join(stream))
"""

# The same API misused: mypy must see it (it would see nothing if charrnn were untyped).
BAD = """\
import charrnn

model = charrnn.train("abcabcabc" * 10, hidden_size=4, seq_length=5, num_iterations=5)
n: int = model.sample(10)
loss = charrnn.lossFun([0], [1], model.hprev, model.params)[0]
loss.upper()
"""


def mypy_env():
    """The environment for mypy, pointing it at charrnn's sources when it cannot find them.

    An installed wheel is found in site-packages (``--python-executable``); an editable
    install is found by an import hook that mypy does not run, so its folder goes on
    MYPYPATH (mypy refuses site-packages there, so only then).
    """
    env = dict(os.environ)
    parent = Path(charrnn.__file__).resolve().parent.parent
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if parent not in site:
        env["MYPYPATH"] = str(parent)
    return env


def run_mypy(tmp_path, *files):
    # The user's modules may call only annotated functions: every function of the API
    # they use is typed. (charrnn's own internals are partly unannotated.)
    modules = ",".join(Path(f).stem for f in files)
    (tmp_path / "mypy.ini").write_text(
        f"[mypy]\n[mypy-{modules}]\ndisallow_untyped_calls = True\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
         "--python-executable", sys.executable, "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "--hide-error-context", "--show-error-codes", *files],
        cwd=tmp_path, env=mypy_env(), capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def test_mypy_accepts_a_program_using_the_api_and_catches_misuse(tmp_path):
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    code, out = run_mypy(tmp_path, "good.py", "bad.py")
    lines = [line for line in out.splitlines() if line.strip()]
    assert not [line for line in lines if not line.startswith("bad.py:")], (
        "mypy reports errors outside bad.py (in the program using the API, or in charrnn):\n"
        + out)
    assert any("bad.py:4:" in line and '"str"' in line and '"int"' in line
               for line in lines), "mypy did not see that CharRNN.sample returns a str:\n" + out
    assert any("bad.py:6:" in line and '"float" has no attribute "upper"' in line
               for line in lines), "mypy did not see that lossFun's loss is a float:\n" + out
    assert code == 1, out


def test_the_typed_program_runs(tmp_path):
    result = subprocess.run([sys.executable, "-c", GOOD], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_package_ships_its_type_information():
    folder = Path(charrnn.__file__).resolve().parent
    assert (folder / "py.typed").is_file(), "py.typed is missing from the installed package"
    stubs = {p.name for p in folder.glob("*.pyi")}
    assert "_kernels.pyi" in stubs, f"no stub of charrnn._kernels next to it: {sorted(stubs)}"
