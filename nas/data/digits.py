"""Built-in `digits`: scikit-learn's bundled 8x8 handwritten digits (1797 real images, no download)."""

from __future__ import annotations

import numpy as np

DIGITS_COUNT = 1797  # images in scikit-learn's bundled set


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 8, 8) scaled to [0, 1] and labels 0..9."""
    # imported here: scikit-learn's import takes most of a second, and every Ray worker and Tune trial process
    # imports the data package whether or not it uses this set
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    return x, bunch.target.astype(np.int64)
