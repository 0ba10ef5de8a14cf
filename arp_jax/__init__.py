"""arp_jax: Dynamic Image Networks (Bilen, Fernando, Gavves, Vedaldi, TPAMI) in JAX.

    import arp_jax
    di = arp_jax.pool(frames)                       # [T, H, W, C] -> the dynamic image [H, W, C]
    mdi = arp_jax.pool(frames, window=10, stride=6)  # -> [S, H, W, C], multiple dynamic images
    png = arp_jax.to_image(di)                      # min-max to uint8, for display
    rp = arp_jax.rank_pool_pixels(frames)            # exact rank pooling, section 5.3's dynamic image
    x = arp_jax.normalize(frames, "torchvision")    # the input pretrained weights expect (also "caffe")
"""

from arp_jax.display import to_image
from arp_jax.normalization import normalize
from arp_jax.pooling import (METHODS, arp_weights, num_windows, pool, rank_pool, rank_pool_pixels,
                             ranking_accuracy, window_indices)

__version__ = "0.1.0"

__all__ = ["METHODS", "arp_weights", "normalize", "num_windows", "pool", "rank_pool", "rank_pool_pixels",
           "ranking_accuracy", "to_image", "window_indices"]
