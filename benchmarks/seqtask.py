"""A generated 1-D sequence classification task on which architectures differ (a user-style npz).

Each sequence (1 x 64) holds one of 5 motifs (8 samples long) and one spike, at random places, in noise; the
class is the motif and whether the spike comes before or after it (10 classes). Recognising the motif is
local; telling the order needs context across the sequence, so receptive field and mixing blocks matter,
and stand-alone accuracies of different archs spread widely.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LENGTH, MOTIF = 64, 8


def motifs() -> np.ndarray:
    t = np.linspace(0, 1, MOTIF)
    return np.stack([np.sin(2 * np.pi * t), np.sign(np.sin(4 * np.pi * t)), 1 - 2 * t, np.exp(-((t - 0.5) ** 2) / 0.02),
                     np.cos(3 * np.pi * t)]).astype(np.float32)


def make(n: int, seed: int, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = motifs()
    x = rng.normal(0, noise, (n, 1, LENGTH)).astype(np.float32)
    y = np.empty(n, dtype=np.int64)
    for i in range(n):
        kind = rng.integers(5)
        while True:
            m, s = rng.integers(0, LENGTH - MOTIF), rng.integers(0, LENGTH)
            if s < m - 2 or s > m + MOTIF + 1:
                break
        x[i, 0, m:m + MOTIF] += 1.5 * shapes[kind]
        x[i, 0, s] += 4.0
        y[i] = 2 * kind + int(s > m)
    return x, y


def write(path: Path, n: int = 4000, n_test: int = 1000, seed: int = 0) -> Path:
    x, y = make(n, seed)
    x_test, y_test = make(n_test, seed + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=Path("runs/seqtask.npz"))
    args = parser.parse_args()
    print(write(args.out))
