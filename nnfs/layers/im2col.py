"""im2col and col2im: convolution as one matrix product.

Both loop over the KH x KW kernel offsets only; each step moves a whole
strided slice of every image and channel at once (as Chainer's
``utils/conv.py`` does), so there is no Python loop over samples, pixels or
channels, and no fancy-index ``+=`` with repeated indices.

The column layout is ``(C, KH, KW, N, OH, OW)``: flattened to
``(C*KH*KW, N*OH*OW)`` it is the right operand of a single GEMM with the
weights flattened to ``(C_out, C*KH*KW)``.
"""

from nnfs.backend import get_array_module


def output_size(size, kernel, stride, padding):
    """``(OH, OW)`` of a window sliding over an image of ``size = (H, W)``: the floor rule
    ``(H + 2*PH - KH) // SH + 1`` (likewise for W), shared by convolution and pooling.

    ``kernel``, ``stride`` and ``padding`` are ``(h, w)`` pairs. A window larger than the
    padded image gives a size below 1; the layers turn that into an error.
    """
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))


def pad_images(X, padding, value=0.0):
    """Pad the two spatial axes of ``(N, C, H, W)`` by ``(ph, pw)`` with ``value``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return X
    xp = get_array_module(X)
    N, C, H, W = X.shape
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=X.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = X
    return out


def im2col(X, kernel, stride, padding, out=None):
    """Unfold image patches into columns.

    Args:
        X: images ``(N, C, H, W)``.
        kernel, stride, padding: ``(h, w)`` pairs.
        out: optional contiguous array of ``C*KH*KW*N*OH*OW`` elements to fill (any shape).

    Returns:
        ``cols`` of shape ``(C, KH, KW, N, OH, OW)``, where
        ``cols[c, i, j, n, y, x] = X_padded[n, c, y*SH + i, x*SW + j]``.
    """
    xp = get_array_module(X)
    N, C, H, W = X.shape
    (KH, KW), (SH, SW) = kernel, stride
    OH, OW = output_size((H, W), kernel, stride, padding)
    Xp = pad_images(X, padding)
    # Channels first, batch second: each kernel offset then writes one contiguous block.
    Xp = Xp.transpose(1, 0, 2, 3)
    shape = (C, KH, KW, N, OH, OW)
    cols = xp.empty(shape, dtype=X.dtype) if out is None else out.reshape(shape)
    for i in range(KH):
        for j in range(KW):
            cols[:, i, j] = Xp[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW]
    return cols


def col2im(cols, image_shape, kernel, stride, padding):
    """Fold columns back into images, summing where patches overlap (adjoint of :func:`im2col`).

    Args:
        cols: ``(C, KH, KW, N, OH, OW)``.
        image_shape: ``(N, C, H, W)`` of the unpadded images.

    Returns:
        ``(N, C, H, W)``: the exact input shape, whatever the padding (0 included).
    """
    xp = get_array_module(cols)
    N, C, H, W = image_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = cols.shape[4], cols.shape[5]
    Xp = xp.zeros((C, N, H + 2 * PH, W + 2 * PW), dtype=cols.dtype)
    for i in range(KH):
        for j in range(KW):
            Xp[:, :, i:i + SH * OH:SH, j:j + SW * OW:SW] += cols[:, i, j]
    # Explicit end indices: a slice like [p:-p] would be empty for p = 0.
    return Xp[:, :, PH:PH + H, PW:PW + W].transpose(1, 0, 2, 3)


def col2im_rows(cols, image_shape, kernel, padding, out=None):
    """:func:`col2im` for stride 1, from columns widened to the padded rows: one long run per add.

    Args:
        cols: ``(C, KH, KW, N, OH, Wp)``: :func:`col2im`'s columns with each output row
            widened to the padded width ``Wp = W + 2*PW``, its last ``Wp - OW`` entries zero.
        image_shape: ``(N, C, H, W)`` of the unpadded images.
        out: optional ``(C, N, Hp*Wp + KW - 1)`` array, its last axis contiguous (a slice of
            a larger one along N, say), to fold into, its
            contents overwritten: the padded images flattened, with a spare tail
            (:func:`padded_rows_shape`), so that a caller can fold a batch a few
            samples at a time into one result.

    Returns:
        ``(N, C, H, W)``, as :func:`col2im` returns for stride 1 (a view of ``out`` when given).

    With stride 1, kernel offset ``(i, j)`` adds output pixel ``(y, x)`` to padded pixel
    ``(y + i, x + j)``, which is ``y*Wp + x`` places after ``i*Wp + j`` in the flattened
    padded image. So once every output row has the padded image's width, the whole
    ``(OH, Wp)`` block of an offset adds to one contiguous run of ``OH*Wp`` pixels,
    where :func:`col2im` adds OH runs of OW (NumPy's loops then spend their time
    starting rows: measured 1.6x slower). The zero entries land on pixels they leave
    unchanged; the last offsets' runs end up to ``KW - 1`` pixels past the image, into
    a spare tail.
    """
    xp = get_array_module(cols)
    N, C, H, W = image_shape
    (KH, KW), (PH, PW) = kernel, padding
    OH, Wp = cols.shape[4], cols.shape[5]
    Hp = H + 2 * PH
    run = OH * Wp
    cols = cols.reshape(C, KH, KW, N, run)
    Xp = xp.empty(padded_rows_shape(image_shape, kernel, padding), dtype=cols.dtype) if out is None else out
    Xp[:, :, :run] = cols[:, 0, 0]  # the first offset starts at pixel 0: a copy, then zeros after it
    Xp[:, :, run:] = 0
    for i in range(KH):
        for j in range(KW):
            if i or j:
                start = i * Wp + j
                Xp[:, :, start:start + run] += cols[:, i, j]
    return unpad_rows(Xp, image_shape, kernel, padding)


def padded_rows_shape(image_shape, kernel, padding):
    """``(C, N, Hp*Wp + KW - 1)``: what :func:`col2im_rows` folds into, the padded images
    of ``image_shape = (N, C, H, W)`` flattened, each with a tail for the runs that end past it."""
    N, C, H, W = image_shape
    (_, KW), (PH, PW) = kernel, padding
    return (C, N, (H + 2 * PH) * (W + 2 * PW) + KW - 1)


def unpad_rows(Xp, image_shape, kernel, padding):
    """The ``(N, C, H, W)`` images inside :func:`col2im_rows`'s ``(C, N, Hp*Wp + KW - 1)`` result (a view)."""
    N, C, H, W = image_shape
    PH, PW = padding
    Hp, Wp = H + 2 * PH, W + 2 * PW
    Xp = Xp[:, :, :Hp * Wp].reshape(C, N, Hp, Wp)
    return Xp[:, :, PH:PH + H, PW:PW + W].transpose(1, 0, 2, 3)
