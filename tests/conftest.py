"""Shared helpers: labelled comparisons and small texts made on the spot (no files needed)."""
import numpy as np
import pytest

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")

# A short text in the spirit of seed 000's poem: small enough that the training
# pointer wraps many times in a few thousand iterations.
POEM = (
    "Two roads diverged in a yellow wood,\n"
    "And sorry I could not travel both\n"
    "And be one traveler, long I stood\n"
    "And looked down one as far as I could\n"
    "To where it bent in the undergrowth;\n\n"
    "Then took the other, as just as fair,\n"
    "And having perhaps the better claim,\n"
    "Because it was grassy and wanted wear;\n"
)


def rel_diff(a, b):
    """max |a - b| / max |b|: one number per array, scale-aware, 0 for equal arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.max(np.abs(b)) if b.size else 0.0
    diff = np.max(np.abs(a - b)) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def assert_close(actual, expected, rtol, label):
    """Fail loudly with the labelled maximum relative difference."""
    assert np.shape(actual) == np.shape(expected), (
        f"{label}: shape {np.shape(actual)} != expected {np.shape(expected)}")
    d = rel_diff(actual, expected)
    assert d <= rtol, f"{label}: max relative difference {d:.3e} > {rtol:.0e}"
    return d


def random_params(rng, H, V, scale, rho=None):
    """Weights of the given scale, nonzero biases.

    ``rho`` sets Whh's scale to rho / sqrt(H), so that its spectral radius is about
    rho: below 1 the recurrence is contractive and rounding differences stay at the
    rounding level; well above 1 it is chaotic and they grow step by step.
    """
    whh = scale if rho is None else rho / np.sqrt(H)
    return (rng.randn(H, V) * scale, rng.randn(H, H) * whh, rng.randn(V, H) * scale,
            rng.randn(H, 1) * scale, rng.randn(V, 1) * scale)


@pytest.fixture
def poem():
    return POEM


def sequences_text(n, seed=0):
    """Seed 004's learnable sequences: 'ae', 'buu', 'ciii' in random order."""
    rng = np.random.RandomState(seed)
    words = np.array(["ae", "buu", "ciii"])
    return "".join(words[rng.choice(3, size=n, p=[0.4, 0.3, 0.3])])


def under_asan():
    """Whether this process runs with AddressSanitizer's runtime (``.ci/asan``).

    Its shadow memory needs terabytes of address space (no ``RLIMIT_AS`` test can
    run), its quarantine keeps freed memory resident (RSS means nothing), and it
    catches SIGSEGV itself (a crash exits with status 1 and its report).
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return "libasan" in f.read()
    except FileNotFoundError:   # not Linux (macOS, Windows): .ci/asan runs on Linux only
        return False
