# The optimizer and what prepares its step, shared by the seeds' loop (kernels.pxi)
# and the stacked cells (stack.pxi); included by kernels.pxi.
#
# Per update, in this order (cells_spec.md, "Gradient processing and the update"):
#   1. element-wise clip of the gradient to [-clip, clip]       (clip < 0: none)
#   2. global-norm clip to clip_norm, as torch.nn.utils.clip_grad_norm_
#                                                                (clip_norm < 0: none)
#   3. the learning rate of update n from the schedule (lr_at)
#   4. the optimizer step (adagrad, sgd, rmsprop, adam)
# Without clip_norm, steps 1 and 4 are fused in one pass over the P parameters, as
# they always were (the seeds' bits).
#
# Also here: the walk of the data pointer and the fixed-order sum of the gradients
# of stream groups, the minibatch machinery both training loops share.

from libc.math cimport cos, pow, floor

cdef enum:
    LR_CONSTANT = 0   # codes shared with charrnn/_stack.py (LR_SCHEDULES)
    LR_COSINE = 1
    LR_STEP = 2


cdef inline floating root(floating x) noexcept nogil:
    # sqrt in the model's precision (sqrtf for float32: no round trip through double)
    if floating is float:
        return sqrtf(x)
    return sqrt(x)


cdef inline floating clipped(floating d, floating c) noexcept nogil:
    # np.clip(d, -c, c): NaN stays NaN
    return c if d > c else (-c if d < -c else d)


cdef inline void clip_inplace(floating *g, Py_ssize_t n, floating c) noexcept nogil:
    # np.clip(g, -c, c, out=g); NaN stays NaN, as in numpy
    cdef Py_ssize_t k
    for k in range(n):
        g[k] = clipped(g[k], c)


# ---------------------------------------------------------------------------
# optimizer_update: clip and one parameter update, fused in one pass over P
# ---------------------------------------------------------------------------

cdef bint optimizer_update(floating *param, const floating *dparam, floating *m1,
                           floating *m2, Py_ssize_t P, int optimizer, double lr,
                           double clip, double beta1, double beta2, double eps,
                           int64_t step) noexcept nogil:
    # param, dparam, m1, m2 (P,): the five parameter arrays laid end to end.
    # The gradient is clipped to [-clip, clip] (clip < 0: not at all) on the way in.
    # step counts updates from 1 (Adam's bias correction). One loop per optimizer,
    # with no branch inside, so that each vectorises (sqrt and division included).
    # Returns whether every updated parameter is finite.
    cdef Py_ssize_t k
    cdef floating d, nan_or_zero = 0                 # param * 0 is NaN for inf and NaN
    cdef floating c = <floating>(clip if clip >= 0 else INFINITY)
    cdef floating neg_lr = <floating>(-lr)
    cdef floating fb1 = <floating>beta1, fb2 = <floating>beta2, feps = <floating>eps
    cdef floating bc1, bc2                         # Adam: step size, 1 / sqrt(bc2)
    if optimizer == OPT_ADAGRAD:
        for k in range(P):
            d = clipped(dparam[k], c)
            m1[k] += d * d                              # mem += dparam * dparam
            param[k] += neg_lr * d / root(m1[k] + <floating>1e-8)
            nan_or_zero += param[k] * <floating>0
    elif optimizer == OPT_SGD:
        for k in range(P):
            d = clipped(dparam[k], c)
            param[k] += neg_lr * d
            nan_or_zero += param[k] * <floating>0
    elif optimizer == OPT_RMSPROP:
        for k in range(P):
            d = clipped(dparam[k], c)
            m1[k] = fb2 * m1[k] + (1 - fb2) * d * d     # cache = decay*cache + (1-decay)*d^2
            param[k] += neg_lr * d / (root(m1[k]) + feps)
            nan_or_zero += param[k] * <floating>0
    else:
        # -lr * (m / bc1) / (sqrt(v / bc2) + eps) as torch.optim.Adam arranges it: the
        # bias corrections folded into a step size and a factor of sqrt(v), so that
        # each element costs one square root and one division (the second division
        # cost about 6% of an LSTM's batch-1 iteration); equal to within rounding
        bc1 = <floating>(neg_lr / (1 - beta1 ** step))         # step size
        bc2 = <floating>(1 / sqrt(1 - beta2 ** step))         # 1 / sqrt(bc2)
        for k in range(P):
            d = clipped(dparam[k], c)
            m1[k] = fb1 * m1[k] + (1 - fb1) * d         # m = b1*m + (1-b1)*d
            m2[k] = fb2 * m2[k] + (1 - fb2) * d * d     # v = b2*v + (1-b2)*d^2
            param[k] += bc1 * m1[k] / (root(m2[k]) * bc2 + feps)
            nan_or_zero += param[k] * <floating>0
    return nan_or_zero == 0


# ---------------------------------------------------------------------------
# clip_grad_norm: the global-norm clip (torch.nn.utils.clip_grad_norm_)
# ---------------------------------------------------------------------------

cdef double sum_of_squares(const floating *g, Py_ssize_t n) noexcept nogil:
    # sum_k g[k]^2 in double, always in the same order: eight interleaved partial sums
    # (k mod 8) added pairwise at the end, so that the loop is not one long chain of
    # dependent additions.
    cdef double s[8]
    cdef double x
    cdef Py_ssize_t k, u
    for u in range(8):
        s[u] = 0
    k = 0
    while k + 8 <= n:
        for u in range(8):
            x = g[k + u]
            s[u] += x * x
        k += 8
    while k < n:
        x = g[k]
        s[0] += x * x
        k += 1
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


cdef double clip_grad_norm(floating *g, Py_ssize_t n, double max_norm) noexcept nogil:
    # total = ||g||_2; coef = max_norm / (total + 1e-6); g *= coef if coef < 1.
    # Returns total (NaN or inf for a non-finite gradient, which is then left as is).
    cdef double total = sqrt(sum_of_squares(g, n))
    cdef double coef = max_norm / (total + 1e-6)
    cdef floating c = <floating>coef
    cdef Py_ssize_t k
    if coef < 1:
        for k in range(n):
            g[k] = g[k] * c
    return total



# ---------------------------------------------------------------------------
# lr_at: the learning-rate schedule
# ---------------------------------------------------------------------------

cdef struct Schedule:
    int kind                # LR_CONSTANT, LR_COSINE or LR_STEP
    double lr               # the base learning rate
    double min_lr           # cosine: the floor, reached at decay_iters
    double lr_decay         # step: the factor per decay_every updates
    int64_t warmup          # W: linear warmup over updates 0 .. W-1
    int64_t decay_iters     # cosine: D > W
    int64_t decay_every     # step: E >= 1

cdef extern from *:
    """
    #include <math.h>
    /* min_lr + 0.5 * (1 + cos(pi * ratio)) * (lr - min_lr), each operation rounded
     * as Python rounds it: the volatile keeps the compiler from fusing the last
     * multiply and add into an FMA (with -mfma it would, and the last bit would
     * differ from the same expression in Python). */
    static double charrnn_cosine_lr(double lr, double min_lr, double ratio)
    {
        volatile double above = 0.5 * (1.0 + cos(3.141592653589793 * ratio)) * (lr - min_lr);
        return min_lr + above;
    }
    """
    double charrnn_cosine_lr(double lr, double min_lr, double ratio) nogil


cdef double lr_at(const Schedule *s, int64_t n) noexcept nogil:
    # The learning rate of update n (0-based), with the operations in the order of
    # the spec and of charrnn.reference.lr_at, so that both give the same double.
    cdef double ratio
    if n < s.warmup:                                   # nanoGPT's linear warmup
        return s.lr * <double>(n + 1) / <double>(s.warmup + 1)
    if s.kind == LR_COSINE:                            # nanoGPT's cosine decay
        if n >= s.decay_iters:
            return s.min_lr
        ratio = <double>(n - s.warmup) / <double>(s.decay_iters - s.warmup)
        return charrnn_cosine_lr(s.lr, s.min_lr, ratio)
    if s.kind == LR_STEP:                              # char-rnn's learning_rate_decay
        return s.lr * pow(s.lr_decay, floor(<double>(n - s.warmup) / <double>s.decay_every))
    return s.lr


cdef inline Schedule make_schedule(double lr, int kind, int64_t warmup, int64_t decay_iters,
                                   double min_lr, double lr_decay,
                                   int64_t decay_every) noexcept nogil:
    cdef Schedule s
    s.kind = kind
    s.lr = lr
    s.min_lr = min_lr
    s.lr_decay = lr_decay
    s.warmup = warmup
    s.decay_iters = decay_iters
    s.decay_every = decay_every
    return s


# ---------------------------------------------------------------------------
# update: steps 1-4 above, on the gradient summed over streams
# ---------------------------------------------------------------------------

cdef enum:
    UPDATE_BLOCK = 16384        # elements per thread's share of the update, and
    UPDATE_THREADS_MIN = 65536  # the fewest parameters for which threads are woken


cdef bint update(floating *param, floating *grad, floating *m1, floating *m2,
                 Py_ssize_t P, int optimizer, const Schedule *sched, int64_t n,
                 double clip, double clip_norm, double beta1, double beta2,
                 double eps, int num_threads) noexcept nogil:
    # One update of param (P,), n updates having been done before it. grad (P,) is
    # changed only when clip_norm >= 0. Returns whether every parameter is finite.
    # The element-wise update runs in blocks on num_threads threads where P is large:
    # each element's arithmetic is the same, so are the bits.
    cdef Py_ssize_t blk, lo, nblk = (P + UPDATE_BLOCK - 1) // UPDATE_BLOCK
    cdef double lr = lr_at(sched, n)
    cdef int bad = 0
    if clip_norm >= 0:
        if clip >= 0:
            clip_inplace(grad, P, <floating>clip)
        clip_grad_norm(grad, P, clip_norm)
        clip = -1                                      # done: not again in the update
    if num_threads < 2 or P < UPDATE_THREADS_MIN:
        return optimizer_update(param, grad, m1, m2, P, optimizer, lr, clip, beta1, beta2,
                                eps, n + 1)
    for blk in prange(nblk, num_threads=num_threads, schedule="static"):
        lo = blk * UPDATE_BLOCK
        bad += not optimizer_update(param + lo, grad + lo, m1 + lo, m2 + lo,
                                    min(<Py_ssize_t>UPDATE_BLOCK, P - lo), optimizer, lr,
                                    clip, beta1, beta2, eps, n + 1)
    return bad == 0


# ---------------------------------------------------------------------------
# Minibatch machinery: the data pointer's walk, the sum over stream groups
# ---------------------------------------------------------------------------

cdef inline bint walk(Py_ssize_t *p, bint *reset, int64_t n, Py_ssize_t T, Py_ssize_t L,
                      int wrap, bint reset_each_epoch) noexcept nogil:
    # Moves the pointer *p of a stream of length L back to 0 when the next chunk of T
    # (plus its last target) does not fit, as the seeds do; *reset says whether the
    # carried state must be zeroed. Returns whether the pointer wrapped.
    cdef bint wrap_now
    if wrap == WRAP_SEEDS:
        wrap_now = p[0] + T + 1 >= L or n == 0
        reset[0] = wrap_now
    else:
        wrap_now = p[0] + T + 1 > L
        reset[0] = wrap_now and reset_each_epoch
    if wrap_now:
        p[0] = 0
    return wrap_now


cdef inline bint window_in_range(const index_t *data, Py_ssize_t L, Py_ssize_t p,
                                 Py_ssize_t T, Py_ssize_t B, Py_ssize_t V) noexcept nogil:
    # Whether data[b*L + p : b*L + p + T + 1] < V for every stream b: the text may be a
    # caller's array (set_data) written to between fit calls; O(B*T) per iteration,
    # next to the O(B*T*H*H) of the step it guards.
    cdef Py_ssize_t b, t
    cdef index_t top = 0
    for b in range(B):
        for t in range(T + 1):
            if data[b * L + p + t] > top:
                top = data[b * L + p + t]
    return top < V


cdef void sum_groups(floating *grads, Py_ssize_t NG, Py_ssize_t P,
                     int num_threads) noexcept nogil:
    # grads (NG, P): row 0 += rows 1 .. NG-1, always in that order, so that the sum
    # does not depend on the number of threads (which split the columns).
    cdef Py_ssize_t blk, j, grp, nblk = (P + 1023) // 1024
    cdef floating acc
    for blk in prange(nblk, num_threads=num_threads, schedule="static"):
        for j in range(blk * 1024, min(P, blk * 1024 + 1024)):
            acc = grads[j]
            for grp in range(1, NG):
                acc = acc + grads[grp * P + j]
            grads[j] = acc



# ---------------------------------------------------------------------------
# Test twins
# ---------------------------------------------------------------------------

def _lr_at(int64_t n, double learning_rate, int lr_schedule, int64_t warmup_iters,
           int64_t decay_iters, double min_lr, double lr_decay, int64_t decay_every):
    """The learning rate of update ``n``, as the training loops compute it."""
    cdef Schedule s = make_schedule(learning_rate, lr_schedule, warmup_iters, decay_iters,
                                    min_lr, lr_decay, decay_every)
    return lr_at(&s, n)


def _clip_grad_norm(floating[::1] grad, double max_norm):
    """Global-norm clip of ``grad`` in place, as the training loops do; returns the norm."""
    return clip_grad_norm(&grad[0], grad.shape[0], max_norm)
