"""Video archives to training-ready data: splits, per-video preparation (frames, flow, dynamic images), the
cache, TFDS builders and the `arp-jax build` command (`python -m data_prep.build`; see README.md,
"Preparing UCF101 and HMDB51"). Decoding, optical flow and JPEG come from the library (`arp_jax.video`,
`arp_jax.flow`, `arp_jax.jpeg`): data_prep builds on arp_jax, never the reverse."""
