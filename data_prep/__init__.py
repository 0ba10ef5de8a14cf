"""Video archives to training-ready data: decoding, optical flow, splits, dynamic images, TFDS builders and
the `python -m data_prep.build` command (see README.md, "Preparing UCF101 and HMDB51")."""
