"""The data of the chapter's sequence-model section: a noisy sine wave and its τ-lag
features.

>>> time, x = noisy_sine()
>>> features, labels = lag_features(x, tau=4)
>>> time.shape, features.shape, labels.shape
((1000,), (996, 4), (996, 1))
"""

from __future__ import annotations

import numpy as np

from zoo.data.errors import DataError
from zoo.registry import datasets

SINE = "sine"
# The chapter's settings.
NUM_POINTS = 1000
NOISE_STD = 0.2
TAU = 4


def noisy_sine(
    num_points: int = NUM_POINTS, noise_std: float = NOISE_STD, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``x_t = sin(0.01 t) + ε`` with ``ε ~ N(0, noise_std²)`` for ``t = 1, …, num_points``.

    Args:
        num_points: the number of time steps. Defaults to 1000.
        noise_std: the standard deviation of ε. Defaults to 0.2.
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same noise.

    Returns:
        ``(time, x)``, both float32 of shape ``[num_points]``.
    """
    time = np.arange(1, num_points + 1, dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0.0, noise_std, size=num_points)
    return time, (np.sin(0.01 * time) + noise).astype(np.float32)


def lag_features(x: np.ndarray, tau: int = TAU) -> tuple[np.ndarray, np.ndarray]:
    """The autoregressive examples of a series: ``features[i] = x[i : i + tau]`` and
    ``labels[i] = x[i + tau]``.

    Args:
        x: the series, shape ``[n]``.
        tau: how many past values each example sees. Defaults to 4.

    Returns:
        ``(features, labels)`` of shapes ``[n - tau, tau]`` and ``[n - tau, 1]``.
    """
    x = np.asarray(x)
    if x.ndim != 1 or not 0 < tau < len(x):
        raise DataError(f"lag_features needs a 1-D series longer than tau={tau}, got {x.shape}")
    features = np.lib.stride_tricks.sliding_window_view(x[:-1], tau).copy()
    return features, x[tau:, None].copy()


datasets.add(SINE, noisy_sine)
