"""Training and evaluation input: the reference's window sampling and augmentation as a Grain pipeline.

Two pipelines read the datasets `data_prep` prepared, with random access (array_record, no TensorFlow):

    source = data_source("ucf101_frames/split1", "train", data_dir=DATA_DIR)  # JPEGs left undecoded
    ds = make_dataset(source, train=True, modality="rgb", window=10, stride=6, max_windows=10, size=224,
                      batch_size=32, seed=0, num_epochs=None, shard_index=jax.process_index(),
                      shard_count=jax.process_count())
    for batch in ds:  # frames [B, S_max, tau, 224, 224, 3] float32, windows [B], label [B]
      logits = model.apply(variables, batch["frames"], num_windows=batch["windows"])

`make_dataset` (the end-to-end path, frames or flow) does the reference's window sampling and emits the
frames of the kept windows; `make_dynamic_image_dataset` (the offline path) reads precomputed dynamic
images (or other summary images), one per window (tau = 1). Both emit the same layout (`transforms`):
`frames [S_max, tau, size, size, C]` per video with `windows`, the number of real windows, and in eval
mode `index`, `name` (`decode_names`) and `valid` (False for padding); they never drop an eval video.
Both normalise as the network's weights expect (`convention`, `arp_jax.normalization`).

Crops (`crop_params`): the reference's, drawn in the frame resized to a short side of `short_side` (256)
and mapped back to stored pixels, so that the one resize of each crop to size x size also does the
reference's resize of the whole frame. Dynamic images are stored at their frames' size and crop alike.
`short_side=None` takes the scales in stored pixels (the synthetic and miniature configs' 64-pixel frames).

The modules, one concern each: `sources` (prepared datasets from their folders), `decode` (the images of
an example), `memory` (a training split kept decoded in memory), `sampling` (windows and crops drawn),
`augment` (crop, resize, flip, normalise), `symmetries` (class-mapping mirrors of whole videos, for
classes a mirror changes), `transforms` (the per-video Grain steps), `pipeline` (their composition,
sharding, batching, workers).
"""

from arp_jax.input.augment import FLOW_MEAN, RGB_MEAN, augment
from arp_jax.input.decode import (CHANNELS, DYNAMIC_IMAGE_KEYS, FRAME_KEYS, MODALITIES, decode_dynamic_images,
                                  decode_video)
from arp_jax.input.memory import DecodedSource
from arp_jax.input.pipeline import make_dataset, make_dynamic_image_dataset
from arp_jax.input.sampling import SCALES, SHORT_SIDE, SIZE, TRAIN_START, crop_params, sample_windows
from arp_jax.input.sources import data_source, dataset_folder, prepared_builder
from arp_jax.input.symmetries import SYMMETRIES, check_symmetries
from arp_jax.input.transforms import (NAME_BYTES, OFFLINE_VALUES, DynamicImageTransform, VideoTransform,
                                      decode_names, encode_name)

__all__ = ["CHANNELS", "DYNAMIC_IMAGE_KEYS", "DecodedSource", "DynamicImageTransform", "FLOW_MEAN",
           "FRAME_KEYS", "MODALITIES", "NAME_BYTES", "OFFLINE_VALUES", "RGB_MEAN", "SCALES", "SHORT_SIDE", "SIZE", "SYMMETRIES",
           "TRAIN_START", "VideoTransform", "augment", "check_symmetries", "crop_params", "data_source",
           "dataset_folder", "decode_dynamic_images", "decode_names", "decode_video", "encode_name", "make_dataset",
           "make_dynamic_image_dataset", "prepared_builder", "sample_windows"]
