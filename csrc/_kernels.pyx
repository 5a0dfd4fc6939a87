# cython: language_level=3, cdivision=True, embedsignature=True
"""charrnn's compiled kernels, portable build (any x86-64 or other CPU).

The kernels themselves are in kernels.pxi (the seeds' model, with optim.pxi) and
stack.pxi (stacked rnn/lstm/gru layers, with cell_*.pxi); _kernels_avx2.pyx
compiles the same source for CPUs with AVX2 and FMA. charrnn._dispatch picks one at import time.
"""

include "kernels.pxi"
include "stack.pxi"

cdef extern from "cpu.h" nogil:
    int charrnn_cpu_has_avx2_fma()


def cpu_has_avx2_fma():
    """Whether this CPU (and OS) can run the AVX2/FMA build of the kernels."""
    return bool(charrnn_cpu_has_avx2_fma())
