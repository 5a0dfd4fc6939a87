# The GRU cell of torch.nn.GRU, for G streams side by side over T steps of one
# layer; included by stack.pxi. gi = W_ih x + b_ih and gh = W_hh h + b_hh (3H each)
# are two stacked products, split r, z, n:
#
#     r = sigmoid(gi_r + gh_r)   z = sigmoid(gi_z + gh_z)
#     n = tanh(gi_n + r * gh_n)
#     h[t+1] = (1 - z) * n + z * h[t]
#
# Layouts (row t * G + g is stream g at step t):
#   hs  (T+1, G, H)    hs[0] = h at the chunk start
#   A   (T, G, 3H)     in: gi; out: the activated r, z, n
#   Ahh (T, G, 3H)     out: gh (gh_n is needed by the backward pass)
#   cs                 unused
# Whh (3H, H), WhhT (H, 3H): weight_hh and its transpose; bhh (3H,) bias_hh.
# Wp: the panels of WhhT, then of Whh, for several streams (stack.pxi's packed), or NULL.


cdef void gru_forward(floating *hs, floating *cs, floating *A, floating *Ahh,
                      const floating *Whh, const floating *WhhT, const floating *Wp,
                      const floating *bhh, Py_ssize_t T, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t t, g, j, GH = G * H, H3 = 3 * H
    cdef floating one = 1       # not the literal 1, which Cython makes 1.0: a double
    cdef floating *a
    cdef floating *q
    cdef floating *h
    cdef const floating *hp
    for t in range(T):
        q = Ahh + t * G * H3
        for g in range(G):
            memcpy(q + g * H3, bhh, H3 * sizeof(floating))
        hh_forward(q, hs + t * GH, Whh, WhhT, Wp, G, H3, H)      # gh = W_hh h[t] + b_hh
        for g in range(G):
            a = A + (t * G + g) * H3
            hp = hs + (t * G + g) * H
            h = hs + ((t + 1) * G + g) * H
            for j in range(2 * H):
                a[j] += q[j]
            sigmoid_inplace(a, 2 * H)                        # r, z
            for j in range(H):
                a[2 * H + j] += a[j] * q[2 * H + j]          # gi_n + r * gh_n
            tanh_inplace(a + 2 * H, H)                       # n
            for j in range(H):
                h[j] = (one - a[H + j]) * a[2 * H + j] + a[H + j] * hp[j]
            q += H3


cdef floating *gru_backward(floating *A, floating *Ahh, floating *dhnext, floating *dcnext,
                            const floating *dH, const floating *hs, const floating *cs,
                            const floating *Whh, const floating *WhhT, const floating *Wp,
                            Py_ssize_t T, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    # dH (T, G, H): dloss/dh[t+1] from above. A (r, z, n) becomes dgi and Ahh (gh)
    # becomes dgh, the gradients of the two products (T, G, 3H): they differ only in
    # the n part (dgh_n = dgi_n * r). Returns Ahh. dhnext (G, H) scratch. The gates'
    # part: cellmath.h.
    cdef Py_ssize_t t, g, GH = G * H, H3 = 3 * H
    cdef floating *a
    cdef floating *q
    cdef floating *dhn
    cdef const floating *hp
    cdef const floating *dh
    memset(dhnext, 0, GH * sizeof(floating))
    for t in range(T - 1, -1, -1):
        for g in range(G):
            a = A + (t * G + g) * H3
            q = Ahh + (t * G + g) * H3
            hp = hs + (t * G + g) * H
            dh = dH + (t * G + g) * H
            dhn = dhnext + g * H
            gru_gates_backward(a, a + H, a + 2 * H, q, q + H, q + 2 * H, dhn, hp, dh, H)
        if t > 0:
            hh_backward(dhnext, Ahh + t * G * H3, Whh, WhhT, Wp, G, H3, H)   # += W_hh.T dgh
    return Ahh
