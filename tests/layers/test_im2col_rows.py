"""col2im_rows (stride 1, rows widened to the padded width) folds exactly as col2im does."""

import numpy as np
import pytest

from nnfs.layers.im2col import col2im, col2im_rows, output_size


@pytest.mark.parametrize("kernel, padding, size", [
    ((3, 3), (1, 1), (6, 5)), ((3, 3), (0, 0), (5, 7)), ((2, 3), (1, 0), (4, 6)),
    ((1, 1), (0, 0), (3, 3)), ((5, 5), (2, 2), (5, 5)), ((3, 1), (1, 0), (4, 2))])
def test_widened_rows_fold_like_col2im(backend, rng, kernel, padding, size):
    N, C = 3, 2
    (KH, KW), (PH, PW), (H, W) = kernel, padding, size
    OH, OW = output_size(size, kernel, (1, 1), padding)
    cols = rng.normal(size=(C, KH, KW, N, OH, OW))
    wide = np.zeros((C, KH, KW, N, OH, W + 2 * PW))
    wide[..., :OW] = cols
    expected = col2im(cols, (N, C, H, W), kernel, (1, 1), padding)
    got = col2im_rows(backend.asarray(wide), (N, C, H, W), kernel, padding)
    assert got.shape == (N, C, H, W)
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-12, atol=1e-12)
