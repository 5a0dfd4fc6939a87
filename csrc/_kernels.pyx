# cython: language_level=3, cdivision=True, embedsignature=True
"""charrnn's compiled kernels, portable build (any x86-64 or other CPU).

The kernels themselves are in kernels.pxi (the seeds' model, with optim.pxi) and
stack.pxi (stacked rnn/lstm/gru layers, with cell_*.pxi); _kernels_avx2.pyx and
_kernels_avx512.pyx compile the same source for CPUs with AVX2 and FMA, and with
AVX-512. charrnn._dispatch picks one at import time.
"""

include "kernels.pxi"
include "stack.pxi"
include "build_facts.pxi"
include "roofline.pxi"

cdef extern from "cpu.h" nogil:
    int charrnn_cpu_has_avx2_fma()
    int charrnn_cpu_has_avx512()


def cpu_has_avx2_fma():
    """Whether this CPU (and OS) can run the AVX2/FMA build of the kernels."""
    return bool(charrnn_cpu_has_avx2_fma())


def cpu_has_avx512():
    """Whether this CPU (and OS) can run the AVX-512 build of the kernels."""
    return bool(charrnn_cpu_has_avx512())
