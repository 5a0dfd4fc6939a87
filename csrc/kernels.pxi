# Kernels of charrnn, included by _kernels.pyx (portable) and _kernels_avx2.pyx.
#
# Legend: H = hidden size, V = vocabulary size, T = sequence length, P = number of
# parameters (H*V + H*H + V*H + H + V).
#
# The math, in the seeds' names (min-char-rnn):
#
#     hs[t] = act(Wxh[:, inputs[t]] + Whh @ hs[t-1] + bh)    # (H,)  act = tanh or sigmoid
#     ys[t] = Why @ hs[t] + by                                # (V,)
#     ps[t] = softmax(ys[t])                                  # (V,)  max-shifted
#     loss  = sum_t -log(ps[t][targets[t]])
#
# Every array is C-contiguous and every index has been checked by the Python layer
# (charrnn._validate) before it gets here: the kernels run without bounds checks,
# without the GIL and without allocating. Scratch buffers come from the caller.
# Kernels are `cdef ... noexcept nogil` on raw pointers; the `def` functions at the
# bottom are the thin drivers that bind memoryviews and release the GIL.
#
# Only the recurrence itself (Whh @ h forward, Whh.T @ dhraw backward) runs step by
# step; everything off it (the output layer, its gradients, dWhh) is done for the
# whole sequence at once, a few rows at a time with their accumulators in registers
# (rowacc in smallblas.h). Minibatch streams (G of them side by side) are extra rows
# of the same products: each pass over the weights serves all of them.

from cython cimport floating
from libc.math cimport log, sqrt, sqrtf, isfinite, INFINITY
from libc.string cimport memcpy, memset
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, int64_t
from cython.parallel cimport prange

cdef extern from "smallblas.h" nogil:
    void rowacc_d(double *y, const double *a, Py_ssize_t a_stride, const double *B,
                  Py_ssize_t ldb, Py_ssize_t K, Py_ssize_t n)
    void rowacc_f(float *y, const float *a, Py_ssize_t a_stride, const float *B,
                  Py_ssize_t ldb, Py_ssize_t K, Py_ssize_t n)
    void rowacc_rows_d(double *Y, Py_ssize_t ldy, const double *A, Py_ssize_t lda,
                       Py_ssize_t a_stride, const double *B, Py_ssize_t ldb,
                       Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void rowacc_rows_f(float *Y, Py_ssize_t ldy, const float *A, Py_ssize_t lda,
                       Py_ssize_t a_stride, const float *B, Py_ssize_t ldb,
                       Py_ssize_t m, Py_ssize_t K, Py_ssize_t n)
    void gemv_d(double *y, const double *A, const double *x, Py_ssize_t m, Py_ssize_t n)
    void gemv_f(float *y, const float *A, const float *x, Py_ssize_t m, Py_ssize_t n)
    void transpose_d(double *Bt, const double *B, Py_ssize_t m, Py_ssize_t n)
    void transpose_f(float *Bt, const float *B, Py_ssize_t m, Py_ssize_t n)

cdef extern from "vecmath.h" nogil:
    void tanh_inplace_d(double *x, Py_ssize_t n)
    void tanh_inplace_f(float *x, Py_ssize_t n)
    void sigmoid_inplace_d(double *x, Py_ssize_t n)
    void sigmoid_inplace_f(float *x, Py_ssize_t n)
    double exp_shift_sum_d(double *x, double m, Py_ssize_t n)
    float exp_shift_sum_f(float *x, float m, Py_ssize_t n)

cdef extern from "split.h" nogil:
    ctypedef void (*charrnn_split_work)(void *job, int half) noexcept nogil
    ctypedef struct charrnn_split:
        pass
    int charrnn_split_start(charrnn_split *s, charrnn_split_work work, void *job,
                            int test_mode)
    void charrnn_split_step(charrnn_split *s)
    void charrnn_split_finish(charrnn_split *s, int64_t *stats)
    enum: CHARRNN_SPLIT_STATS

ctypedef fused index_t:
    uint8_t
    uint16_t
    uint32_t

# Codes shared with charrnn/_validate.py (ACTIVATIONS, OPTIMIZERS) and charrnn/model.py
# (wrap). L is the length of a stream: the text, or 1/B of it with B minibatch streams.
cdef enum:
    ACT_TANH = 0
    ACT_SIGMOID = 1
    OPT_ADAGRAD = 0
    OPT_SGD = 1
    OPT_RMSPROP = 2
    OPT_ADAM = 3
    WRAP_SEEDS = 0    # 001/003: reset when p + T + 1 >= L (or n == 0); hprev always reset
    WRAP_EPOCHS = 1   # 002/004: reset when p + T + 1 > L; hprev reset only if asked


# ---------------------------------------------------------------------------
# BLAS-like helpers, dispatched on the fused type
# ---------------------------------------------------------------------------

cdef inline void rowacc(floating *y, const floating *a, Py_ssize_t a_stride,
                        const floating *B, Py_ssize_t ldb, Py_ssize_t K,
                        Py_ssize_t n) noexcept nogil:
    # y[j] += sum_k a[k * a_stride] * B[k, j],  B (K, n) with row stride ldb
    if floating is double:
        rowacc_d(y, a, a_stride, B, ldb, K, n)
    else:
        rowacc_f(y, a, a_stride, B, ldb, K, n)


cdef inline void rowacc_rows(floating *Y, Py_ssize_t ldy, const floating *A,
                             Py_ssize_t lda, Py_ssize_t a_stride, const floating *B,
                             Py_ssize_t ldb, Py_ssize_t m, Py_ssize_t K,
                             Py_ssize_t n) noexcept nogil:
    # Y[r, :] += sum_k A[r * lda + k * a_stride] * B[k, :] for r < m  (rows 4 at a time)
    if floating is double:
        rowacc_rows_d(Y, ldy, A, lda, a_stride, B, ldb, m, K, n)
    else:
        rowacc_rows_f(Y, ldy, A, lda, a_stride, B, ldb, m, K, n)


cdef inline void matvec(floating *y, const floating *A, const floating *AT,
                        const floating *x, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    # y += A @ x, A (m, n), AT (n, m) its transpose. While A fits in L1 the row form
    # (rows of AT, accumulators in registers) is fastest; beyond it the dot form, which
    # reads A as one sequential stream, the order the L2 and L3 prefetchers serve best.
    # Measured alone on Zen 5 (48 KB L1): row form faster up to 50 kB, dot form from
    # 60 kB (100 x 100 float64, 80 kB: 0.40 us against 0.92; sampling at H=100: +10%).
    if gemv_form(m, n, sizeof(floating)):
        gemv(y, A, x, m, n)
    else:
        rowacc(y, x, 1, AT, m, n, m)


cdef inline bint gemv_form(Py_ssize_t m, Py_ssize_t n, size_t itemsize) noexcept nogil:
    # whether matvec takes the dot form for an (m, n) matrix
    return m * n * <Py_ssize_t>itemsize > 56000


cdef inline void gemv(floating *y, const floating *A, const floating *x, Py_ssize_t m,
                      Py_ssize_t n) noexcept nogil:
    # y += A @ x, A (m, n): rows 8 at a time, each row's sum in one order whatever m,
    # so that any split of the rows at a multiple of 8 gives the same bits
    if floating is double:
        gemv_d(y, A, x, m, n)
    else:
        gemv_f(y, A, x, m, n)


cdef inline void transpose(floating *Bt, const floating *B, Py_ssize_t m,
                           Py_ssize_t n) noexcept nogil:
    # Bt (n, m) = B.T, B (m, n)
    if floating is double:
        transpose_d(Bt, B, m, n)
    else:
        transpose_f(Bt, B, m, n)


cdef inline void activate(floating *h, Py_ssize_t n, int activation) noexcept nogil:
    # h = act(h) in place: tanh, or seed 004's sigmoid 1 / (1 + exp(-h))
    if floating is double:
        if activation == ACT_TANH:
            tanh_inplace_d(h, n)
        else:
            sigmoid_inplace_d(h, n)
    else:
        if activation == ACT_TANH:
            tanh_inplace_f(h, n)
        else:
            sigmoid_inplace_f(h, n)


cdef inline floating exp_shift_sum(floating *x, floating m, Py_ssize_t n) noexcept nogil:
    # x = exp(x - m); returns sum(x)
    if floating is double:
        return exp_shift_sum_d(x, m, n)
    else:
        return exp_shift_sum_f(x, m, n)


# ---------------------------------------------------------------------------
# rnn_step_forward / softmax_forward: one time step
# ---------------------------------------------------------------------------

cdef inline void rnn_step_forward(floating *h, const floating *hprev, Py_ssize_t x,
                                  const floating *Wxh, const floating *Whh,
                                  const floating *WhhT, const floating *bh,
                                  Py_ssize_t H, Py_ssize_t V, int activation) noexcept nogil:
    # h = act(Wxh[:, x] + Whh @ hprev + bh)       h, hprev (H,)  Wxh (H, V)
    # WhhT (H, H) is Whh transposed (see matvec).
    # x < 0 means an all-zero input vector (seed 002's first sampling step).
    # Wxh @ onehot(x) is a column gather: no one-hot vector is built.
    cdef Py_ssize_t i
    if x >= 0:
        for i in range(H):
            h[i] = Wxh[i * V + x] + bh[i]
    else:
        memcpy(h, bh, H * sizeof(floating))
    matvec(h, Whh, WhhT, hprev, H, H)               # h += Whh @ hprev
    activate(h, H, activation)


cdef inline double softmax_forward(floating *p, Py_ssize_t V) noexcept nogil:
    # p = softmax(p) in place, max-shifted; returns log(sum(exp(y - max))) + max,
    # so that -log p[k] = returned - y[k] without underflow.
    cdef Py_ssize_t v
    cdef floating m = p[0]
    cdef floating s
    for v in range(1, V):
        if p[v] > m:
            m = p[v]
    s = exp_shift_sum(p, m, V)                       # p = exp(y - max)
    for v in range(V):
        p[v] = p[v] / s
    return log(<double>s) + m


# ---------------------------------------------------------------------------
# lossfun_forward / lossfun_backward: a whole sequence (the seeds' lossFun)
# ---------------------------------------------------------------------------

cdef inline void input_column(floating *h, const floating *Wxh, const floating *bh,
                              Py_ssize_t x, Py_ssize_t r0, Py_ssize_t r1,
                              Py_ssize_t V) noexcept nogil:
    # h[i] = Wxh[i, x] + bh[i] for r0 <= i < r1: Wxh @ onehot(x) is a column
    cdef Py_ssize_t i
    for i in range(r0, r1):
        h[i] = Wxh[i * V + x] + bh[i]


cdef inline void activate_backward(floating *d, const floating *h, Py_ssize_t n,
                                   int activation) noexcept nogil:
    # d = act'(.) * d in place (dhraw), from the activations h (n,)
    cdef Py_ssize_t i
    if activation == ACT_TANH:
        for i in range(n):
            d[i] = (1 - h[i] * h[i]) * d[i]             # through tanh
    else:
        for i in range(n):
            d[i] = (h[i] * (1 - h[i])) * d[i]           # through the sigmoid


# ---------------------------------------------------------------------------
# The recurrence of one stream on two threads (split.h): a step's rows [0, rows) on
# the calling thread, [rows, H) on the helper, rows a multiple of 8. Each half runs
# the kernels' own loops on its rows (gemv sums each row on its own), so
# the bits are those of one thread.
# ---------------------------------------------------------------------------

cdef struct SplitJob:
    # the step (set by the calling thread before each step) and the sequence's arrays,
    # untyped so that one C function serves both dtypes
    bint forward
    Py_ssize_t t, T, H, V, rows, itemsize
    int activation
    const int32_t *inputs
    void *hs                    # (T+1, H)
    void *dh                    # (T, H)
    void *dhnext                # (H,)
    const void *Wxh             # (H, V)
    const void *Whh             # (H, H)
    const void *WhhT            # (H, H)
    const void *bh              # (H,)


cdef void split_half_typed(const SplitJob *j, int half, floating *hs, floating *dh,
                           floating *dhnext, const floating *Wxh, const floating *Whh,
                           const floating *WhhT, const floating *bh) noexcept nogil:
    # Forward step t: h_t = act(Wxh[:, x] + Whh @ h_{t-1} + bh) on this half's rows.
    # Backward step t (bptt full): dhnext = Whh.T @ dhraw[t+1] (zero at t = T-1), then
    # dhraw[t] = act'(h_t) * (dh[t] + dhnext), on this half's rows; lossfun_backward's
    # loop does the same per step, the product at the end of the step before.
    cdef Py_ssize_t i, t = j.t, H = j.H
    cdef Py_ssize_t r0 = 0 if half == 0 else j.rows
    cdef Py_ssize_t r1 = j.rows if half == 0 else H
    cdef floating *y
    if j.forward:
        y = hs + (t + 1) * H
        input_column(y, Wxh, bh, j.inputs[t], r0, r1, j.V)
        gemv(y + r0, Whh + r0 * H, hs + t * H, r1 - r0, H)     # h += Whh @ hs[t-1]
        activate(y + r0, r1 - r0, j.activation)
    else:
        y = dh + t * H
        memset(dhnext + r0, 0, (r1 - r0) * sizeof(floating))
        if t < j.T - 1:
            gemv(dhnext + r0, WhhT + r0 * H, y + H, r1 - r0, H)   # Whh.T @ dhraw[t+1]
        for i in range(r0, r1):
            y[i] += dhnext[i]                          # dh = Why.T @ dy + dhnext
        activate_backward(y + r0, hs + (t + 1) * H + r0, r1 - r0, j.activation)


cdef void split_half(void *job, int half) noexcept nogil:
    # charrnn_split_work: one half of the current step, in the job's dtype
    cdef const SplitJob *j = <const SplitJob *>job
    if j.itemsize == sizeof(double):
        split_half_typed(j, half, <double *>j.hs, <double *>j.dh, <double *>j.dhnext,
                         <const double *>j.Wxh, <const double *>j.Whh,
                         <const double *>j.WhhT, <const double *>j.bh)
    else:
        split_half_typed(j, half, <float *>j.hs, <float *>j.dh, <float *>j.dhnext,
                         <const float *>j.Wxh, <const float *>j.Whh,
                         <const float *>j.WhhT, <const float *>j.bh)


cdef double lossfun_forward(floating *hs, floating *ps,
                            const int32_t *inputs, const int32_t *targets,
                            const floating *hprev,
                            const floating *Wxh, const floating *Whh, const floating *WhhT,
                            const floating *WhyT, const floating *bh, const floating *by,
                            Py_ssize_t T, Py_ssize_t G, Py_ssize_t H, Py_ssize_t V,
                            int activation, charrnn_split *team=NULL,
                            SplitJob *job=NULL) noexcept nogil:
    # G streams side by side (G = 1: the seeds' lossFun). Row r = t * G + g is
    # stream g at step t:  inputs, targets (T, G);  hprev (G, H);
    # hs (T+1, G, H): hs[0] = hprev, hs[t+1] = h_t;  ps (T, G, V): probabilities.
    # WhhT (H, H), WhyT (H, V): Whh and Why transposed.
    # team, job (G = 1 only): the recurrence's rows split between two threads.
    # Returns the summed cross-entropy loss of all T * G predictions.
    cdef Py_ssize_t t, g, r, TG = T * G
    cdef floating *h
    cdef floating *p
    cdef double loss = 0, lse, y_target
    memcpy(hs, hprev, G * H * sizeof(floating))
    for t in range(T):                                  # the recurrence
        h = hs + (t + 1) * G * H
        if team != NULL:
            job.forward = True
            job.t = t
            charrnn_split_step(team)
            continue
        for g in range(G):
            input_column(h + g * H, Wxh, bh, inputs[t * G + g], 0, H, V)
        if G == 1:                                      # h += Whh @ hs[t-1]
            matvec(h, Whh, WhhT, hs + t * H, H, H)
        else:                                           # (G rows share each pass)
            rowacc_rows(h, H, hs + t * G * H, H, 1, WhhT, H, G, H, H)
        activate(h, G * H, activation)
    for r in range(TG):
        memcpy(ps + r * V, by, V * sizeof(floating))
    rowacc_rows(ps, V, hs + G * H, H, 1, WhyT, V, TG, H, V)   # ys = hs @ Why.T + by
    for r in range(TG):                                 # off the recurrence
        p = ps + r * V
        y_target = p[targets[r]]
        lse = softmax_forward(p, V)
        loss += lse - y_target                          # -log ps[t][targets[t]]
    return loss


cdef void lossfun_backward(floating *dWxh, floating *dWhh, floating *dWhy,
                           floating *dbh, floating *dby,
                           floating *ps, floating *dh, floating *dhnext,
                           const floating *hs, const int32_t *inputs, const int32_t *targets,
                           const floating *Whh, const floating *WhhT, const floating *Why,
                           Py_ssize_t T, Py_ssize_t G, Py_ssize_t H, Py_ssize_t V,
                           int activation, bint bptt_full, charrnn_split *team=NULL,
                           SplitJob *job=NULL) noexcept nogil:
    # Adds the gradients of the loss into dWxh (H, V), dWhh (H, H), dWhy (V, H),
    # dbh (H,), dby (V,), summed over the G streams.  Layouts as lossfun_forward;
    # ps (T, G, V) is overwritten with dy, dh (T, G, H) with dhraw, dhnext is (G, H).
    # bptt_full=False is Elman's network: hs[t-1] is a constant input, no dhnext.
    # team, job: as lossfun_forward (G = 1, bptt_full only).
    cdef Py_ssize_t t, i, v, x, r, TG = T * G, GH = G * H
    cdef floating *dy
    cdef floating *d
    cdef const floating *h
    memset(dh, 0, TG * H * sizeof(floating))
    for r in range(TG):                                 # off the recurrence
        dy = ps + r * V
        dy[targets[r]] -= 1                             # dy = ps[t] - onehot(target)
        for v in range(V):
            dby[v] += dy[v]                             # dby += dy
    rowacc_rows(dh, H, ps, V, 1, Why, H, TG, V, H)      # dh[t] = Why.T @ dy[t]
    memset(dhnext, 0, GH * sizeof(floating))
    for t in range(T - 1, -1, -1):                      # the recurrence, backwards
        d = dh + t * GH
        h = hs + (t + 1) * GH
        if team != NULL and bptt_full:
            job.forward = False
            job.t = t
            charrnn_split_step(team)
            continue
        if bptt_full:
            for i in range(GH):
                d[i] += dhnext[i]                       # dh = Why.T @ dy + dhnext
        activate_backward(d, h, GH, activation)         # dhraw
        if bptt_full and t > 0:
            memset(dhnext, 0, GH * sizeof(floating))
            if G == 1:                                  # dhnext = Whh.T @ dhraw
                matvec(dhnext, WhhT, Whh, d, H, H)
            else:
                rowacc_rows(dhnext, H, d, H, 1, Whh, H, G, H, H)
    for r in range(TG - 1, -1, -1):                     # off the recurrence again
        d = dh + r * H
        x = inputs[r]
        for i in range(H):
            dbh[i] += d[i]                              # dbh += dhraw
        for i in range(H):
            dWxh[i * V + x] += d[i]                     # dWxh[:, x] += dhraw (scatter)
    rowacc_rows(dWhh, H, dh, 1, H, hs, H, H, TG, H)     # dWhh += sum_t dhraw[t] hs[t-1].T
    rowacc_rows(dWhy, H, ps, 1, V, hs + GH, H, V, TG, H)  # dWhy += sum_t dy[t] hs[t].T


# The optimizer, element-wise and global-norm clipping and the learning-rate
# schedule are shared with the stacked cells: see optim.pxi.
include "optim.pxi"


# ---------------------------------------------------------------------------
# Python-facing drivers: bind memoryviews, release the GIL, run, return scalars
# ---------------------------------------------------------------------------

def lossfun(const int32_t[::1] inputs, const int32_t[::1] targets,
            const floating[::1] hprev,                                   # (H,)
            const floating[:, ::1] Wxh, const floating[:, ::1] Whh,      # (H, V) (H, H)
            const floating[:, ::1] Why,                                  # (V, H)
            const floating[::1] bh, const floating[::1] by,              # (H,) (V,)
            floating[:, ::1] dWxh, floating[:, ::1] dWhh, floating[:, ::1] dWhy,
            floating[::1] dbh, floating[::1] dby,                        # zeroed here
            floating[:, ::1] hs, floating[:, ::1] ps,                    # (T+1, H) (T, V)
            floating[:, ::1] dh, floating[::1] dhnext,                   # (T, H) (H,)
            floating[:, ::1] WhhT, floating[:, ::1] WhyT,                # (H, H) (H, V) scratch
            int activation, bint bptt_full, double clip):
    """Loss and clipped gradients of one sequence; h_last is left in hs[T]."""
    cdef Py_ssize_t T = inputs.shape[0], H = Whh.shape[0], V = Wxh.shape[1]
    cdef double loss
    with nogil:
        memset(&dWxh[0, 0], 0, H * V * sizeof(floating))
        memset(&dWhh[0, 0], 0, H * H * sizeof(floating))
        memset(&dWhy[0, 0], 0, V * H * sizeof(floating))
        memset(&dbh[0], 0, H * sizeof(floating))
        memset(&dby[0], 0, V * sizeof(floating))
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        transpose(&WhyT[0, 0], &Why[0, 0], V, H)
        loss = lossfun_forward(&hs[0, 0], &ps[0, 0], &inputs[0], &targets[0], &hprev[0],
                               &Wxh[0, 0], &Whh[0, 0], &WhhT[0, 0], &WhyT[0, 0], &bh[0],
                               &by[0],
                               T, 1, H, V, activation)
        lossfun_backward(&dWxh[0, 0], &dWhh[0, 0], &dWhy[0, 0], &dbh[0], &dby[0],
                         &ps[0, 0], &dh[0, 0], &dhnext[0], &hs[0, 0],
                         &inputs[0], &targets[0], &Whh[0, 0], &WhhT[0, 0], &Why[0, 0],
                         T, 1, H, V, activation, bptt_full)
        if clip >= 0:                                   # np.clip(dparam, -5, 5)
            clip_inplace(&dWxh[0, 0], H * V, <floating>clip)
            clip_inplace(&dWhh[0, 0], H * H, <floating>clip)
            clip_inplace(&dWhy[0, 0], V * H, <floating>clip)
            clip_inplace(&dbh[0], H, <floating>clip)
            clip_inplace(&dby[0], V, <floating>clip)
    return loss


cdef double group_loss_and_grad(floating *grad, floating *hs, floating *ps, floating *dh,
                               floating *dhnext, int32_t *window,
                               const index_t *data, Py_ssize_t L, Py_ssize_t b0,
                               Py_ssize_t p, const floating *hprev,
                               const floating *flat, const floating *WhhT,
                               const floating *WhyT, Py_ssize_t T, Py_ssize_t G,
                               Py_ssize_t H, Py_ssize_t V, int activation,
                               bint bptt_full, charrnn_split *team=NULL,
                               SplitJob *job=NULL) noexcept nogil:
    # Loss and gradient (into grad (P,), zeroed here) of streams b0 .. b0+G-1 at
    # pointer p. Stream b is data[b*L : (b+1)*L]; hprev (G, H) are their states.
    # window (2, T, G) int32 scratch; the other scratch as lossfun_forward/backward.
    # team, job: the recurrence on two threads (G = 1), see lossfun_forward.
    cdef Py_ssize_t t, g, P = H * V + H * H + V * H + H + V
    cdef int32_t *inputs = window
    cdef int32_t *targets = window + T * G
    cdef const floating *Wxh = flat
    cdef const floating *Whh = Wxh + H * V
    cdef const floating *Why = Whh + H * H
    cdef const floating *bh = Why + V * H
    cdef const floating *by = bh + H
    cdef double loss
    for t in range(T):
        for g in range(G):
            inputs[t * G + g] = data[(b0 + g) * L + p + t]
            targets[t * G + g] = data[(b0 + g) * L + p + t + 1]
    memset(grad, 0, P * sizeof(floating))
    loss = lossfun_forward(hs, ps, inputs, targets, hprev, Wxh, Whh, WhhT, WhyT, bh, by,
                           T, G, H, V, activation, team, job)
    if isfinite(loss):
        lossfun_backward(grad, grad + H * V, grad + H * V + H * H,
                         grad + H * V + H * H + V * H, grad + P - V,
                         ps, dh, dhnext, hs, inputs, targets, Whh, WhhT, Why,
                         T, G, H, V, activation, bptt_full, team, job)
    return loss


def train_loop(const index_t[::1] data,            # (N,) the encoded text
               floating[::1] flat,                 # (P,) Wxh, Whh, Why, bh, by end to end
               floating[::1] m1, floating[::1] m2, # (P,) optimizer state
               floating[:, ::1] hprev,             # (B, H) carried hidden states, updated
               floating[:, ::1] grads,             # (NG, P) scratch: one gradient per group
               floating[:, ::1] hs, floating[:, ::1] ps,   # (NG, (T+1)*G*H) (NG, T*G*V)
               floating[:, ::1] dh, floating[:, ::1] dhnext,  # (NG, T*G*H) (NG, G*H)
               floating[:, ::1] WhhT, floating[:, ::1] WhyT,  # (H, H) (H, V) scratch
               int32_t[:, ::1] window,             # (NG, 2*T*G) scratch
               double[::1] group_loss,             # (NG,) scratch
               double[::1] loss_out, double[::1] smooth_out,   # (n_iter,) history
               Py_ssize_t H, Py_ssize_t V, Py_ssize_t T, Py_ssize_t G,
               Py_ssize_t p, int64_t n, double smooth_loss,
               int activation, int optimizer, bint bptt_full, int wrap,
               bint reset_each_epoch, double lr, double clip,
               double beta1, double beta2, double eps, int num_threads,
               int lr_schedule=LR_CONSTANT, int64_t warmup_iters=0, int64_t decay_iters=0,
               double min_lr=0, double lr_decay=1, int64_t decay_every=1,
               double clip_norm=-1, Py_ssize_t split_rows=0, int split_test=0,
               int64_t[::1] split_stats=None):
    """Run len(loss_out) training iterations of the seeds' main loop on B streams.

    The text is split into B = hprev.shape[0] contiguous streams of L = N // B
    characters, advanced together by T per iteration from the shared pointer p (B = 1
    is the seeds' loop). Streams are processed in NG groups of G (the last may be
    smaller), groups in parallel on ``num_threads`` threads; the gradient is the sum
    over streams, reduced in a fixed order (group 0, 1, ...) so that results do not
    depend on the number of threads. The loss recorded is the mean over streams.

    The learning rate of update n is ``lr_at(n)`` of the schedule given by the
    keyword arguments (see optim.pxi); ``clip_norm >= 0`` clips the gradient's global
    norm after the element-wise clip. The defaults are the seeds' constant rate.

    ``split_rows > 0`` (B = 1, a multiple of 8 below H, ``Whh`` large enough for the
    dot form of matvec; otherwise ignored) runs the recurrence on two threads, rows
    ``[0, split_rows)`` on this one and the rest on a helper started for this call
    (split.h), with the same results as one thread. ``split_stats`` (7,) int64, if
    given, receives split.h's statistics (charrnn_split_finish): the steps split, the
    halves the helper computed, the halves this thread took over, the step it fell
    back to one thread at (-1: never), the nanoseconds lost, the nanoseconds the split
    was active and the longest single loss; ``split_test`` is split.h's test_mode.

    Returns ``(iterations_done, p, n, smooth_loss, epochs_wrapped, status)``. It stops
    early (iterations_done < len(loss_out)) with status 1 at a non-finite loss, before
    updating, with status 2 after an update that made a parameter non-finite, and with
    status 3, before the iteration, where the text holds an index >= V (a caller's
    array changed after it was checked).
    """
    cdef Py_ssize_t B = hprev.shape[0], NG = grads.shape[0], P = flat.shape[0]
    cdef Py_ssize_t L = data.shape[0] // B
    cdef Py_ssize_t n_iter = loss_out.shape[0], k, grp, done = 0, wrapped = 0
    cdef Py_ssize_t b0, Gg
    cdef floating *Whh = &flat[0] + H * V
    cdef floating *Why = Whh + H * H
    cdef double loss
    cdef bint reset
    cdef int status = 0
    cdef Schedule sched = make_schedule(lr, lr_schedule, warmup_iters, decay_iters, min_lr,
                                        lr_decay, decay_every)
    cdef charrnn_split team
    cdef SplitJob job
    cdef charrnn_split *split = NULL
    cdef int64_t *stats = NULL
    if split_stats is not None and split_stats.shape[0] >= CHARRNN_SPLIT_STATS:
        stats = &split_stats[0]
    if (split_rows > 0 and split_rows % 8 == 0 and split_rows < H and B == 1 and NG == 1
            and gemv_form(H, H, sizeof(floating))):
        job = SplitJob(forward=True, t=0, T=T, H=H, V=V, rows=split_rows,
                       itemsize=sizeof(floating), activation=activation,
                       inputs=&window[0, 0], hs=&hs[0, 0], dh=&dh[0, 0],
                       dhnext=&dhnext[0, 0], Wxh=&flat[0], Whh=Whh, WhhT=&WhhT[0, 0],
                       bh=Why + V * H)
        split = &team
    with nogil:
        if split != NULL:
            charrnn_split_start(split, split_half, &job, split_test)
        for k in range(n_iter):
            if walk(&p, &reset, n, T, L, wrap, reset_each_epoch) and n > 0:
                wrapped += 1
            if not window_in_range(&data[0], L, p, T, B, V):
                status = 3                              # an index outside the vocabulary
                break
            if reset:
                memset(&hprev[0, 0], 0, B * H * sizeof(floating))
            transpose(&WhhT[0, 0], Whh, H, H)
            transpose(&WhyT[0, 0], Why, V, H)
            if NG == 1:
                group_loss[0] = group_loss_and_grad(
                    &grads[0, 0], &hs[0, 0], &ps[0, 0], &dh[0, 0], &dhnext[0, 0],
                    &window[0, 0], &data[0], L, 0, p, &hprev[0, 0], &flat[0],
                    &WhhT[0, 0], &WhyT[0, 0], T, B, H, V, activation, bptt_full,
                    split, &job)
            else:
                # round robin: the last, smaller group does not unbalance the threads
                for grp in prange(NG, num_threads=num_threads, schedule="static", chunksize=1):
                    b0 = grp * G
                    Gg = G if b0 + G <= B else B - b0
                    group_loss[grp] = group_loss_and_grad(
                        &grads[grp, 0], &hs[grp, 0], &ps[grp, 0], &dh[grp, 0],
                        &dhnext[grp, 0], &window[grp, 0], &data[0], L, b0, p,
                        &hprev[b0, 0], &flat[0], &WhhT[0, 0], &WhyT[0, 0],
                        T, Gg, H, V, activation, bptt_full)
                sum_groups(&grads[0, 0], NG, P, num_threads)   # grad = sum over groups
            loss = group_loss[0]
            for grp in range(1, NG):
                loss += group_loss[grp]
            loss /= B
            if not isfinite(loss):
                status = 1
                break
            smooth_loss = smooth_loss * 0.999 + loss * 0.001
            if not update(&flat[0], &grads[0, 0], &m1[0], &m2[0], P, optimizer, &sched, n,
                          clip, clip_norm, beta1, beta2, eps, 1):
                status = 2
                break
            for grp in range(NG):                            # hprev = hs[T] of each stream
                b0 = grp * G
                Gg = G if b0 + G <= B else B - b0
                memcpy(&hprev[b0, 0], &hs[grp, 0] + T * Gg * H, Gg * H * sizeof(floating))
            loss_out[k] = loss
            smooth_out[k] = smooth_loss
            p += T
            n += 1
            done += 1
        if split != NULL:
            charrnn_split_finish(split, stats)
    return done, p, n, smooth_loss, wrapped, status


# ---------------------------------------------------------------------------
# keep_top_k: the k-th largest logit by radix selection, O(V) whatever the logits
# ---------------------------------------------------------------------------

from libc.stdint cimport uint64_t


cdef inline uint64_t order_key(floating x) noexcept nogil:
    # An unsigned integer that sorts as x does: the IEEE 754 bits with every bit of a
    # negative number flipped and the sign bit of the others set (-0.0 sorts just below
    # +0.0, which compare equal anyway). Logits are never NaN here.
    cdef uint64_t b
    cdef uint32_t b32
    if floating is double:
        memcpy(&b, &x, sizeof(double))
        return ~b if b >> 63 else b | (<uint64_t>1 << 63)
    else:
        memcpy(&b32, &x, sizeof(float))
        return <uint32_t>~b32 if b32 >> 31 else b32 | (<uint32_t>1 << 31)


cdef inline floating kth_largest(const floating *y, floating *scratch, Py_ssize_t V,
                                 Py_ssize_t k) noexcept nogil:
    # The k-th largest of y (V,), repeats counted: np.sort(y)[-k], 1 <= k <= V.
    # Radix selection on order_key, one byte at a time from the top: count the
    # candidates per value of the byte, keep those whose byte holds the k-th largest
    # (compacted into scratch (V,); y is not changed), and rank within them.
    # sizeof(floating) passes at most, each over fewer candidates: O(V) for any
    # logits, ties included (no pivot to choose badly).
    cdef Py_ssize_t count[256]
    cdef Py_ssize_t n = V, m, v
    cdef const floating *src = y
    cdef int shift = 8 * sizeof(floating) - 8
    cdef int d
    while True:
        memset(count, 0, 256 * sizeof(Py_ssize_t))
        for v in range(n):
            count[(order_key(src[v]) >> shift) & 255] += 1
        d = 255
        while count[d] < k:                       # byte values from the largest down
            k -= count[d]
            d -= 1
        if count[d] < n:                          # keep the candidates with byte d
            m = 0
            for v in range(n):                    # m <= v: compacts scratch in place
                if <int>((order_key(src[v]) >> shift) & 255) == d:
                    scratch[m] = src[v]
                    m += 1
            src = scratch
            n = m
        if n == 1 or shift == 0:                  # after the last byte all keys are equal
            return src[0]
        shift -= 8


cdef inline void keep_top_k(floating *y, floating *scratch, Py_ssize_t V,
                            Py_ssize_t k) noexcept nogil:
    # y[v] = -inf where y[v] is below the k-th largest of y (V,); values equal to it
    # are kept, so more than k may remain. 0 < k < V; scratch (V,).
    cdef Py_ssize_t v
    cdef floating kth = kth_largest(y, scratch, V, k)
    for v in range(V):
        if y[v] < kth:
            y[v] = -INFINITY


# ---------------------------------------------------------------------------
# keep_top_p: the nucleus, the smallest set of most likely characters reaching top_p
# ---------------------------------------------------------------------------

from libc.stdlib cimport qsort


cdef int descending_d(const void *a, const void *b) noexcept nogil:
    cdef double x = (<const double *>a)[0], y = (<const double *>b)[0]
    return (x < y) - (x > y)


cdef int descending_f(const void *a, const void *b) noexcept nogil:
    cdef float x = (<const float *>a)[0], y = (<const float *>b)[0]
    return (x < y) - (x > y)


cdef inline void keep_top_p(floating *p, floating *scratch, Py_ssize_t V,
                            double top_p) noexcept nogil:
    # p (V,) probabilities; p[v] = 0 outside the nucleus, 0 < top_p < 1; scratch (V,).
    # The characters in order of probability, largest first and the lower index
    # first among equal ones; the nucleus is the shortest prefix whose float64
    # cumsum reaches top_p * (the whole sum), the character that crosses included.
    # Only the values are sorted (the cumsum does not depend on which of equal
    # values comes first): the prefix ends at value tau, and of the characters with
    # p == tau the lowest `ties` indices are kept. O(V log V); zeros are not sorted.
    cdef Py_ssize_t v, i, m = 0, ties
    cdef double total = 0, c = 0, target
    cdef floating tau
    for v in range(V):
        if p[v] > 0:
            scratch[m] = p[v]
            m += 1
    if m == 0:
        return
    if floating is double:
        qsort(scratch, m, sizeof(double), descending_d)
    else:
        qsort(scratch, m, sizeof(float), descending_f)
    for i in range(m):
        total += scratch[i]                        # np.cumsum(sorted p)[-1]
    target = top_p * total
    i = 0
    while True:                                    # searchsorted(cumsum, target, 'left')
        c += scratch[i]
        if c >= target or i == m - 1:
            break
        i += 1
    tau = scratch[i]
    ties = 1
    while ties <= i and scratch[i - ties] == tau:
        ties += 1
    for v in range(V):
        if p[v] > tau:
            continue
        if p[v] == tau and ties > 0:
            ties -= 1
        else:
            p[v] = 0


def sample(floating[::1] h,                        # (H,) updated to the last hidden state
           Py_ssize_t seed_ix,                     # < 0: all-zero first input
           const double[::1] uniforms,             # (n,) one draw per character
           const floating[:, ::1] Wxh, const floating[:, ::1] Whh,
           const floating[:, ::1] Why,
           const floating[::1] bh, const floating[::1] by,
           floating[::1] hnext, floating[::1] p,   # (H,) (V,) scratch
           floating[:, ::1] WhhT, floating[:, ::1] WhyT,   # (H, H) (H, V) scratch
           floating[::1] selected,                 # (V,) scratch for top_k and top_p
           int64_t[::1] out,                       # (n,) sampled indices
           int activation, double temperature, bint greedy, Py_ssize_t top_k,
           double top_p=1.0):
    """Sample len(out) indices, as the seeds' np.random.choice loop does.

    The draw is numpy's: ``searchsorted(cumsum(p) / cumsum(p)[-1], u, 'right')``.
    ``greedy`` takes the argmax and uses no uniform; ``top_k > 0`` keeps only the
    k largest logits (ties at the k-th value are kept), found in O(V) per character;
    then ``top_p < 1`` keeps only the nucleus of the softmax (see keep_top_p). The
    order is that of HF transformers: temperature, top-k, softmax, top-p, draw.
    """
    cdef Py_ssize_t n = out.shape[0], H = Whh.shape[0], V = Wxh.shape[1]
    cdef Py_ssize_t t, v, x = seed_ix, best
    cdef double c, total, u
    with nogil:
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        transpose(&WhyT[0, 0], &Why[0, 0], V, H)
        for t in range(n):
            rnn_step_forward(&hnext[0], &h[0], x, &Wxh[0, 0], &Whh[0, 0], &WhhT[0, 0],
                             &bh[0], H, V, activation)
            memcpy(&h[0], &hnext[0], H * sizeof(floating))
            memcpy(&p[0], &by[0], V * sizeof(floating))
            matvec(&p[0], &Why[0, 0], &WhyT[0, 0], &h[0], V, H)   # y = Why @ h + by
            if greedy:
                best = 0
                for v in range(1, V):
                    if p[v] > p[best]:
                        best = v
                x = best
            else:
                if temperature != 1.0:
                    for v in range(V):
                        p[v] = p[v] / temperature
                if 0 < top_k < V:
                    keep_top_k(&p[0], &selected[0], V, top_k)
                softmax_forward(&p[0], V)
                if top_p < 1.0:
                    keep_top_p(&p[0], &selected[0], V, top_p)
                total = 0
                for v in range(V):                        # cdf = cumsum(p)
                    total += p[v]
                u = uniforms[t]
                c = 0
                x = V - 1
                for v in range(V):
                    c += p[v]
                    if u < c / total:                     # searchsorted(cdf / cdf[-1], u, 'right')
                        x = v
                        break
            out[t] = x
    return None


def advance_hidden(floating[::1] h,                # (H,) updated in place
                   const int32_t[::1] inputs,      # (T,)
                   const floating[:, ::1] Wxh, const floating[:, ::1] Whh,
                   const floating[::1] bh, floating[::1] hnext,   # (H,) scratch
                   floating[:, ::1] WhhT,                          # (H, H) scratch
                   int activation):
    """Feed ``inputs`` through the recurrence (no outputs): warms h on a prime text."""
    cdef Py_ssize_t t, T = inputs.shape[0], H = Whh.shape[0], V = Wxh.shape[1]
    with nogil:
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        for t in range(T):
            rnn_step_forward(&hnext[0], &h[0], inputs[t], &Wxh[0, 0], &Whh[0, 0],
                             &WhhT[0, 0], &bh[0], H, V, activation)
            memcpy(&h[0], &hnext[0], H * sizeof(floating))


def evaluate(const index_t[::1] data,               # (N,) encoded text
             floating[::1] h,                       # (H,) start state, updated
             const floating[:, ::1] Wxh, const floating[:, ::1] Whh,
             const floating[:, ::1] Why,
             const floating[::1] bh, const floating[::1] by,
             floating[::1] hnext, floating[::1] p,  # (H,) (V,) scratch
             floating[:, ::1] WhhT, floating[:, ::1] WhyT,   # (H, H) (H, V) scratch
             int activation,
             double[::1] logp=None):                # (N-1,) or None: log p of each target
    """Summed loss of predicting data[1:] from data[:-1] (forward only, no gradients).

    With ``logp``, also ``logp[t] = log p(data[t+1] | data[:t+1])``, natural logs.
    h ends as the state after data[N-2], the last input.
    """
    cdef Py_ssize_t t, N = data.shape[0], H = Whh.shape[0], V = Wxh.shape[1]
    cdef double loss = 0, y_target, lse
    cdef bint keep = logp is not None and logp.shape[0] > 0
    cdef double *out = &logp[0] if keep else NULL
    with nogil:
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        transpose(&WhyT[0, 0], &Why[0, 0], V, H)
        for t in range(N - 1):
            rnn_step_forward(&hnext[0], &h[0], data[t], &Wxh[0, 0], &Whh[0, 0],
                             &WhhT[0, 0], &bh[0], H, V, activation)
            memcpy(&h[0], &hnext[0], H * sizeof(floating))
            memcpy(&p[0], &by[0], V * sizeof(floating))
            matvec(&p[0], &Why[0, 0], &WhyT[0, 0], &h[0], V, H)
            y_target = p[data[t + 1]]
            lse = softmax_forward(&p[0], V)
            loss += lse - y_target
            if keep:
                out[t] = y_target - lse
    return loss


# ---------------------------------------------------------------------------
# Build facts and thin test twins of the vector math (for tests/test_kernels.py)
# ---------------------------------------------------------------------------

cdef extern from *:
    """
    #ifdef _OPENMP
    #define CHARRNN_HAVE_OPENMP 1
    #else
    #define CHARRNN_HAVE_OPENMP 0
    #endif
    """
    int CHARRNN_HAVE_OPENMP


def has_openmp():
    """Whether this build runs minibatch streams on several threads (OpenMP)."""
    return bool(CHARRNN_HAVE_OPENMP)


def _vec_tanh(floating[::1] x):
    """x = tanh(x) in place, with the kernels' vectorised tanh."""
    activate(&x[0], x.shape[0], ACT_TANH)


def _vec_sigmoid(floating[::1] x):
    """x = 1 / (1 + exp(-x)) in place, with the kernels' vectorised sigmoid."""
    activate(&x[0], x.shape[0], ACT_SIGMOID)


def _vec_exp_shift(floating[::1] x, double m):
    """x = exp(x - m) in place; returns the sum, as the softmax does."""
    return exp_shift_sum(&x[0], <floating>m, x.shape[0])


def _kth_largest(const floating[::1] y, floating[::1] scratch, Py_ssize_t k):
    """The k-th largest of y, repeats counted (np.sort(y)[-k]), as top_k finds it."""
    if not 1 <= k <= y.shape[0] or scratch.shape[0] < y.shape[0]:
        raise ValueError("need 1 <= k <= len(y) and len(scratch) >= len(y)")
    return kth_largest(&y[0], &scratch[0], y.shape[0], k)


# ---------------------------------------------------------------------------
# Seed 000's modular steps (charrnn.steps): the forward pass keeping its caches,
# the backward pass from them, and the Adagrad update of one parameter in place.
# The same kernels as lossfun, cut where seed 000 cuts its functions.
# ---------------------------------------------------------------------------

def forward_caches(const int32_t[::1] inputs,                      # (T,)
                   const floating[::1] hprev,                      # (H,)
                   const floating[:, ::1] Wxh, const floating[:, ::1] Whh,   # (H, V) (H, H)
                   const floating[:, ::1] Why,                               # (V, H)
                   const floating[::1] bh, const floating[::1] by,           # (H,) (V,)
                   floating[:, ::1] hs, floating[:, ::1] ps,       # (T+1, H) (T, V) out
                   floating[:, ::1] WhhT, floating[:, ::1] WhyT,   # (H, H) (H, V) scratch
                   int activation):
    """hs[0] = hprev, hs[t+1] = h_t, ps[t] = softmax(Why @ h_t + by) of one sequence."""
    cdef Py_ssize_t T = inputs.shape[0], H = Whh.shape[0], V = Wxh.shape[1]
    with nogil:
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        transpose(&WhyT[0, 0], &Why[0, 0], V, H)
        # lossfun_forward also sums a loss, which needs targets: the inputs serve (any
        # valid indices do) and the sum is dropped; the cost is compute_cost's
        lossfun_forward(&hs[0, 0], &ps[0, 0], &inputs[0], &inputs[0], &hprev[0],
                        &Wxh[0, 0], &Whh[0, 0], &WhhT[0, 0], &WhyT[0, 0], &bh[0], &by[0],
                        T, 1, H, V, activation)


def backward_caches(const int32_t[::1] inputs, const int32_t[::1] targets,   # (T,) (T,)
                    const floating[:, ::1] hs, const floating[:, ::1] ps,    # (T+1, H) (T, V)
                    const floating[:, ::1] Whh, const floating[:, ::1] Why,  # (H, H) (V, H)
                    floating[::1] grad,             # (P,) out: dWxh, dWhh, dWhy, dbh, dby
                    floating[:, ::1] dy, floating[:, ::1] dh,   # (T, V) (T, H) scratch
                    floating[::1] dhnext, floating[:, ::1] WhhT,  # (H,) (H, H) scratch
                    int activation, bint bptt_full, double clip):
    """Gradients of the loss of the forward pass cached in hs and ps, clipped to
    [-clip, clip] (clip < 0: not at all), into grad laid out as the five parameters
    end to end. hs and ps are left as they are (dy is a copy of ps)."""
    cdef Py_ssize_t T = inputs.shape[0], H = Whh.shape[0], V = Why.shape[0]
    cdef Py_ssize_t P = grad.shape[0]
    cdef floating *g = &grad[0]
    with nogil:
        memcpy(&dy[0, 0], &ps[0, 0], T * V * sizeof(floating))
        memset(g, 0, P * sizeof(floating))
        transpose(&WhhT[0, 0], &Whh[0, 0], H, H)
        lossfun_backward(g, g + H * V, g + H * V + H * H, g + P - V - H, g + P - V,
                         &dy[0, 0], &dh[0, 0], &dhnext[0], &hs[0, 0], &inputs[0],
                         &targets[0], &Whh[0, 0], &WhhT[0, 0], &Why[0, 0],
                         T, 1, H, V, activation, bptt_full)
        if clip >= 0:                                   # np.clip(dparam, -5, 5)
            clip_inplace(g, P, <floating>clip)


def adagrad_update(floating[::1] param, const floating[::1] dparam,   # (n,) (n,)
                   floating[::1] mem, double learning_rate):          # (n,)
    """mem += dparam * dparam; param -= lr * dparam / sqrt(mem + 1e-8), in place.

    One parameter array of seed 000's update_parameters, by the training loop's own
    update (no clip here: the backward pass clipped). Returns whether every updated
    parameter is finite."""
    cdef bint finite
    with nogil:
        finite = optimizer_update(&param[0], &dparam[0], &mem[0], &mem[0], param.shape[0],
                                  OPT_ADAGRAD, learning_rate, -1, 0, 0, 0, 1)
    return finite


def _keep_top_p(floating[::1] p, floating[::1] scratch, double top_p):
    """p[v] = 0 outside the nucleus of top_p (0 < top_p < 1), in place, as sample does."""
    if not 0 < top_p < 1 or scratch.shape[0] < p.shape[0]:
        raise ValueError("need 0 < top_p < 1 and len(scratch) >= len(p)")
    keep_top_p(&p[0], &scratch[0], p.shape[0], top_p)
