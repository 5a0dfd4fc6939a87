# cython: language_level=3, cdivision=True, embedsignature=True
"""charrnn's compiled kernels, built with AVX-512 (F, DQ, VL) and FMA (chosen at run time
when the CPU has them).

Same source as the portable build: see kernels.pxi and stack.pxi. The vectors of
smallblas.h are 64 bytes wide here, so sums run in another order than in the other
builds: float64 results differ from theirs in the last bits.
"""

include "kernels.pxi"
include "stack.pxi"
include "build_facts.pxi"
include "roofline.pxi"
