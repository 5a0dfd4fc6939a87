# cython: language_level=3, cdivision=True, embedsignature=True
"""charrnn's compiled kernels, built with -mavx2 -mfma (chosen at run time when the CPU has them).

Same source as the portable build: see kernels.pxi and stack.pxi.
"""

include "kernels.pxi"
include "stack.pxi"
include "build_facts.pxi"
include "roofline.pxi"
