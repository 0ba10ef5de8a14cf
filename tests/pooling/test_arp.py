"""ARP coefficients (eqs. 3 and 5) against the formulas and REFERENCE.md."""

import numpy as np
import pytest

from arp_jax.pooling import arp

REFERENCE_T10 = [-12.2187, -3.2187, 0.2813, 1.9480, 2.6980, 2.8980, 2.7313, 2.3028, 1.6778, 0.9000]


def harmonic_by_sum(T):
  """alpha_t = sum_{k=t..T} (2k - T - 1) / k: the equivalent form, summed in float64."""
  return np.array([sum((2 * k - T - 1) / k for k in range(t, T + 1)) for t in range(1, T + 1)])


def test_reference_values_for_ten_frames():
  np.testing.assert_allclose(arp.arp_weights(10), REFERENCE_T10, atol=1e-4)


@pytest.mark.parametrize("T", [2, 3, 5, 10, 20, 77, 300])
def test_harmonic_weights_match_both_forms_and_sum_to_zero(T):
  weights = arp.arp_weights(T)
  assert weights.dtype == np.float32 and weights.shape == (T,)
  np.testing.assert_allclose(weights, harmonic_by_sum(T), rtol=1e-6, atol=1e-6 * T)
  assert abs(weights.astype(np.float64).sum()) < 1e-5 * np.abs(weights).sum()


@pytest.mark.parametrize("T", [2, 5, 10, 33])
def test_linear_weights(T):
  np.testing.assert_array_equal(arp.arp_weights(T, "linear"), 2 * np.arange(1, T + 1) - T - 1)


@pytest.mark.parametrize("variant", arp.VARIANTS)
def test_one_frame_is_returned_as_is(variant):
  np.testing.assert_array_equal(arp.arp_weights(1, variant), [1.0])


def test_harmonic_arp_equals_linear_weights_on_time_varying_means():
  rng = np.random.default_rng(0)
  psi = rng.normal(size=(12, 7))
  means = np.cumsum(psi, axis=0) / np.arange(1, 13)[:, None]  # V_t
  linear = (2 * np.arange(1, 13) - 13)
  np.testing.assert_allclose(harmonic_by_sum(12) @ psi, linear @ means, rtol=1e-12)
  np.testing.assert_allclose(arp.arp_weights(12) @ psi, linear @ means, rtol=1e-5)


@pytest.mark.parametrize("variant", arp.VARIANTS)
def test_traced_weights_match_static_ones_for_every_length(variant):
  T = 300
  harmonic = arp.harmonic_numbers(T)
  lengths = np.arange(1, T + 1)
  table = np.stack([np.asarray(arp.arp_weight_at(t, lengths, variant, harmonic)) for t in range(T)], 1)
  for length in (1, 2, 3, 10, 99, 300):
    expected = np.zeros(T, np.float32)
    expected[:length] = arp.arp_weights(length, variant)
    np.testing.assert_allclose(table[length - 1], expected, rtol=0,
                               atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("T, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                      ("10", TypeError), (True, TypeError)])
def test_bad_lengths(T, error):
  with pytest.raises(error, match="T"):
    arp.arp_weights(T)


def test_unknown_variant():
  with pytest.raises(ValueError, match="unknown ARP variant 'cubic'"):
    arp.arp_weights(10, "cubic")
