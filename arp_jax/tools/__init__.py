"""The library's own command-line tools, run as `arp-jax <subcommand>` (`arp_jax.cli` lists them all).

  pool.py     `arp-jax pool`: dynamic images of a video or frame folder, saved as PNG
  figure.py   `arp-jax figure`: the paper's Fig. 1/9 panels or Fig. 3's ARP weights, saved as PNG
  convert.py  `arp-jax convert`: pretrained PyTorch or Caffe weights to an Orbax checkpoint
"""
