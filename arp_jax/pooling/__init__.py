"""Temporal pooling operators: pure, jittable, vmappable and differentiable functions, free of Flax state."""

from arp_jax.pooling.arp import arp_weights
from arp_jax.pooling.temporal import METHODS, pool
from arp_jax.pooling.rank_pooling import RP_ORDERS, rank_pool, rank_pool_pixels, ranking_accuracy
from arp_jax.pooling.windows import num_windows, window_indices

__all__ = ["METHODS", "RP_ORDERS", "arp_weights", "num_windows", "pool", "rank_pool", "rank_pool_pixels",
           "ranking_accuracy", "window_indices"]
