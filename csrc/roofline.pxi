# Roofline probes: this core's peak multiply-add rate and its read bandwidth from a
# buffer of a given size, measured with the vectors of this build; included by each
# _kernels*.pyx after build_facts.pxi (which declares CHARRNN_VBYTES). charrnn/bench.py
# times them (a few ms each) and sets every bench row against the limit they give.
#
# Both probes run without the GIL and allocate nothing: the buffer of the read probe
# comes from the caller. Each returns a checksum of what it computed, so that the
# compiler cannot drop the work (without -ffast-math it may not reorder the sums
# either).

cdef extern from *:
    """
    #include "smallblas.h"   /* CHARRNN_VBYTES, charrnn_vd, charrnn_vf */

    /* Independent chains of multiply-adds in the FMA probe: enough to cover the
     * latency (4 cycles) of two FMA pipes, few enough for 16 vector registers (AVX2)
     * with the two operands. */
    #define CHARRNN_ROOF_CHAINS 12
    /* Independent sums in the read probe: two or three loads a cycle, add latency 3. */
    #define CHARRNN_ROOF_SUMS 8

    /* c = c * m + a on CHARRNN_ROOF_CHAINS vectors, n times: 2 * CHAINS * lanes flops
     * per iteration (a fused multiply-add where the build has FMA, else a multiply
     * and an add; smallblas.h's operations, so it builds on the portable C path too). With 0 < m < 1 and a = 1 - m every lane stays at 1: no overflow,
     * no subnormals. m and a pass through volatile variables: with constants the
     * compiler would see that c never changes and drop the loop. */
    #define CHARRNN_DEFINE_ROOF_FMA(T, S, VT)                                        \
    static T charrnn_roof_fma_##S(ptrdiff_t n, T m, T a)                             \
    {                                                                                \
        enum { W = sizeof(VT) / sizeof(T) };                                         \
        volatile T m_opaque = m, a_opaque = a;                                       \
        T mm = m_opaque, lanes[W];                                                   \
        VT c[CHARRNN_ROOF_CHAINS], va;                                               \
        for (int l = 0; l < W; l++) lanes[l] = a_opaque;                             \
        va = vload_##S(lanes);                                                       \
        for (int l = 0; l < W; l++) lanes[l] = 1;                                    \
        for (int u = 0; u < CHARRNN_ROOF_CHAINS; u++) c[u] = vload_##S(lanes);       \
        for (ptrdiff_t i = 0; i < n; i++)                                            \
            for (int u = 0; u < CHARRNN_ROOF_CHAINS; u++)                            \
                c[u] = vmadd_##S(va, mm, c[u]);                                      \
        T s = 0;                                                                     \
        for (int u = 0; u < CHARRNN_ROOF_CHAINS; u++) s += vsum_##S(c[u]);           \
        return s;                                                                    \
    }
    CHARRNN_DEFINE_ROOF_FMA(double, d, charrnn_vd)
    CHARRNN_DEFINE_ROOF_FMA(float, f, charrnn_vf)

    /* The sum of buf[0:n], `passes` times over: n * 8 bytes read per pass, n a
     * multiple of CHARRNN_ROOF_SUMS * lanes (the caller sizes the buffer). Written
     * with smallblas.h's vector operations, so it builds on the portable C path. */
    static double charrnn_roof_read(const double *buf, ptrdiff_t n, ptrdiff_t passes)
    {
        const ptrdiff_t W = CHARRNN_VBYTES / sizeof(double);
        charrnn_vd c[CHARRNN_ROOF_SUMS];
        for (int u = 0; u < CHARRNN_ROOF_SUMS; u++) c[u] = vzero_d();
        for (ptrdiff_t p = 0; p < passes; p++)
            for (ptrdiff_t i = 0; i + CHARRNN_ROOF_SUMS * W <= n; i += CHARRNN_ROOF_SUMS * W)
                for (int u = 0; u < CHARRNN_ROOF_SUMS; u++)
                    c[u] = vadd_d(c[u], vload_d(buf + i + u * W));
        double s = 0;
        for (int u = 0; u < CHARRNN_ROOF_SUMS; u++) s += vsum_d(c[u]);
        return s;
    }
    """
    int CHARRNN_ROOF_CHAINS
    int CHARRNN_ROOF_SUMS
    double charrnn_roof_fma_d(Py_ssize_t n, double m, double a) nogil
    float charrnn_roof_fma_f(Py_ssize_t n, float m, float a) nogil
    double charrnn_roof_read(const double *buf, Py_ssize_t n, Py_ssize_t passes) nogil


def _roofline_layout():
    """What the probes do per unit: ``{"vector_bytes", "fma_chains", "read_sums"}``.

    One iteration of :func:`_roofline_fma` is ``fma_chains`` multiply-adds on vectors of
    ``vector_bytes`` bytes; :func:`_roofline_read` needs a length that is a multiple of
    ``read_sums * vector_bytes / 8`` doubles.
    """
    return {"vector_bytes": CHARRNN_VBYTES, "fma_chains": CHARRNN_ROOF_CHAINS,
            "read_sums": CHARRNN_ROOF_SUMS}


def _roofline_fma(bint single, Py_ssize_t iterations):
    """Run the multiply-add probe ``iterations`` times, in float32 if ``single`` else
    float64, on one core; returns its checksum (``fma_chains * lanes`` when all went
    well: each lane stays at 1)."""
    cdef double s
    with nogil:
        if single:
            s = charrnn_roof_fma_f(iterations, 0.75, 0.25)
        else:
            s = charrnn_roof_fma_d(iterations, 0.75, 0.25)
    return s


def _roofline_read(const double[::1] buf, Py_ssize_t passes):
    """Sum ``buf`` ``passes`` times over with vector loads (the read probe); returns the
    sum. ``buf.shape[0]`` must be a multiple of ``read_sums * vector_bytes / 8``."""
    cdef double s
    cdef Py_ssize_t n = buf.shape[0]
    if n == 0:
        return 0.0
    with nogil:
        s = charrnn_roof_read(&buf[0], n, passes)
    return s
