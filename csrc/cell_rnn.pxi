# The Elman cell of torch.nn.RNN (tanh), for G streams side by side over T steps
# of one layer; included by stack.pxi. (The seeds' one-layer model keeps its own
# kernels in kernels.pxi: this is the cell of the stacked path.)
#
#     h[t+1] = tanh(W_ih x[t] + b_ih + W_hh h[t] + b_hh)          (H,)
#
# Layouts (row t * G + g is stream g at step t):
#   hs (T+1, G, H)   hs[0] = the state at the chunk start, hs[t+1] = h after step t
#   A  (T, G, H)     in: W_ih x[t] + b_ih (the stack computes it for all T at once)
#   cs, Ahh          unused (no cell state, no separate hidden pre-activation)
# Whh (H, H) and WhhT (H, H) are weight_hh and its transpose, bhh (H,) bias_hh.
# Wp: the panels of WhhT, then of Whh, for several streams (stack.pxi's packed), or NULL.


cdef void rnn_forward(floating *hs, floating *cs, floating *A, floating *Ahh,
                      const floating *Whh, const floating *WhhT, const floating *Wp,
                      const floating *bhh, Py_ssize_t T, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t t, g, i
    cdef floating *a
    cdef floating *h
    for t in range(T):
        a = A + t * G * H
        for g in range(G):
            for i in range(H):
                a[g * H + i] += bhh[i]
        hh_forward(a, hs + t * G * H, Whh, WhhT, Wp, G, H, H)   # a += W_hh h[t]
        h = hs + (t + 1) * G * H
        memcpy(h, a, G * H * sizeof(floating))
        tanh_inplace(h, G * H)                               # h[t+1] = tanh(a)


cdef floating *rnn_backward(floating *A, floating *Ahh, floating *dhnext, floating *dcnext,
                            const floating *dH, const floating *hs, const floating *cs,
                            const floating *Whh, const floating *WhhT, const floating *Wp,
                            Py_ssize_t T, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    # dH (T, G, H): dloss/dh[t+1] from above (the layer over this one, or the decoder).
    # A becomes dA = dloss/d(pre-activation) (T, G, H), the gradient of both the ih and
    # the hh pre-activations: returns A. dhnext (G, H) scratch, dcnext unused.
    cdef Py_ssize_t t, i, GH = G * H
    cdef floating one = 1       # not the literal 1, which Cython makes 1.0: a double
    cdef floating *da
    cdef const floating *h
    cdef const floating *dh
    memset(dhnext, 0, GH * sizeof(floating))
    for t in range(T - 1, -1, -1):
        da = A + t * GH
        h = hs + (t + 1) * GH
        dh = dH + t * GH
        for i in range(GH):
            da[i] = (one - h[i] * h[i]) * (dh[i] + dhnext[i])  # through tanh
        if t > 0:
            memset(dhnext, 0, GH * sizeof(floating))
            hh_backward(dhnext, da, Whh, WhhT, Wp, G, H, H)      # dhnext = W_hh.T da
    return A
