import numpy as np
import pytest

from zoo.data import DataError
from zoo.data.sine import lag_features, noisy_sine


def test_noisy_sine_is_sin_001_t_plus_gaussian_noise_of_std_02():
    time, x = noisy_sine()
    assert time.shape == x.shape == (1000,)
    assert time[0] == 1 and time[-1] == 1000
    noise = x - np.sin(0.01 * time)
    assert abs(noise.mean()) < 0.03
    assert noise.std() == pytest.approx(0.2, abs=0.02)


def test_the_same_seed_gives_the_same_series_and_another_seed_another():
    assert np.array_equal(noisy_sine(seed=3)[1], noisy_sine(seed=3)[1])
    assert not np.array_equal(noisy_sine(seed=3)[1], noisy_sine(seed=4)[1])


def test_lag_features_are_the_tau_previous_values_and_the_label_the_next():
    x = np.arange(10, dtype=np.float32)
    features, labels = lag_features(x, tau=4)
    assert features.shape == (6, 4) and labels.shape == (6, 1)
    for index in range(6):
        assert features[index].tolist() == x[index : index + 4].tolist()
        assert labels[index, 0] == x[index + 4]


def test_default_tau_is_4_on_1000_points():
    features, labels = lag_features(noisy_sine()[1])
    assert features.shape == (996, 4) and labels.shape == (996, 1)


@pytest.mark.parametrize("tau", [0, 10])
def test_tau_must_leave_examples(tau):
    with pytest.raises(DataError):
        lag_features(np.zeros(10), tau=tau)
