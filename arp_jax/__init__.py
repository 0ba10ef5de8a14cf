"""arp_jax: Dynamic Image Networks (Bilen, Fernando, Gavves, Vedaldi, TPAMI) in JAX.

    import arp_jax
    di = arp_jax.pool(frames)                       # [T, H, W, C] -> the dynamic image [H, W, C]
    mdi = arp_jax.pool(frames, window=10, stride=6)  # -> [S, H, W, C], multiple dynamic images
    png = arp_jax.to_image(di)                      # min-max to uint8, for display
"""

from arp_jax.display import to_image
from arp_jax.pooling import (METHODS, arp_weights, num_windows, pool, rank_pool, ranking_accuracy,
                             window_indices)

__version__ = "0.1.0"

__all__ = ["METHODS", "arp_weights", "num_windows", "pool", "rank_pool", "ranking_accuracy",
           "to_image", "window_indices"]
