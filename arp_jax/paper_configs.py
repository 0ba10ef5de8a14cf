"""The paper's streams on UCF101 and HMDB51 as configs, for the files of `experiments/`.

    config = stream_config("ucf101", split=1, stream="di", backbone="resnext50_32x4d")

A stream is one network of the paper (REFERENCE.md, "Training"): SI (RGB frames), DI (dynamic images of
windows of 10 frames every 6, ARP at the input), OF (optical flow fields, 2 channels), DOF (dynamic
optical flow: ARP over windows of 10 flow fields). Each is the multiple dynamic image network of fig. 4(c):
up to 10 windows per video in training and 20 at test, merged inside the network by temporal max-pooling;
SI and OF are its windows of one frame (see `frame_streams` below). The learning rates, dropout and
batch are the reference's: ResNeXt RGB 1e-2 for 2 epochs then 1e-3 for 8, flow 1e-2, 1e-2, 1e-3, 1e-3;
CaffeNet RGB 1e-3 x [1, 1, 0.1, 0.1]; dropout 0.5 (RGB) / 0.8 (flow); 128 videos per update as 4 steps of
32; the training list 5 times per epoch.

Where the paper can be read two ways, an option names each reading; the default is the paper's words:

  frame_streams  "max_merge" (default): SI and OF are the MDI network with tau = 1 ("a single frame window
                 corresponds to using RGB frames as input", §5.5), which "uses an additional temporal
                 max-pooling layer to merge the resulting convolutional features into one" (§5.5): up
                 to 10 frames per video in training, 20 at test, merged by max at the "merge" boundary
                 (`eval.aggregate="network"`).
                 "softmax_mean": the two-stream habit, of which the paper says nothing: one random frame
                 per video in training, the softmax scores of up to 20 frames averaged at test
                 (`eval.aggregate="mean"`).
  caffenet_size  224 (default): "rescale it to 224 x 224" (§5.2; REFERENCE.md: "resize the crop to
                 224x224"). 227: the crop of Caffe's BVLC prototxt. Both give CaffeNet a 6x6 pool5.
  placement      of depth "convX" in Tables 4/5 (`insertion_boundary`), CaffeNet. "conv_input" (default):
                 "positioning the approximate rank before the X-th convolutional layer" (§5.6;
                 REFERENCE.md: "just before convolution layer X"), and parametric pooling goes where ARP
                 does ("Similar to the dynamic map experiments", §5.7, in the same columns of Table 5):
                 the input of convX, after conv(X-1)'s ReLU, max-pool and LRN. "after_relu": §5.7's
                 "after the ReLU layer following the specified convolutional layer" taken literally, before
                 the max-pool and LRN: boundary relu1 for conv2, relu2 for conv3 (conv1 and conv4 are the
                 same boundary in both readings).

`runlocal=True` shrinks a config to a smoke run on CPU: the miniature UCF101/HMDB51 of real clips
(split 1, read from <workdir>/mini_data: prepare it first with `arp-jax mini-data --dataset ucf101
--data-dir <workdir>/mini_data`), two steps of two videos of two windows, ResNeXt backbones replaced by `resnext_tiny` (same boundaries, so every `pool_at` stays
valid) at 64 x 64; CaffeNet keeps its input side (224 or 227).
"""

from __future__ import annotations

import ml_collections

from arp_jax.config import base_config, parse_arg

DATASETS = ("ucf101", "hmdb51")
STREAMS = ("si", "di", "of", "dof")
STREAM_NAMES = {"si": "SI", "di": "DI", "of": "OF", "dof": "DOF"}
RESNEXT_RGB = [1e-2] * 2 + [1e-3] * 8
RESNEXT_FLOW = [1e-2, 1e-2, 1e-3, 1e-3]
CAFFENET_RGB = [1e-3, 1e-3, 1e-4, 1e-4]
FRAME_STREAMS = ("max_merge", "softmax_mean")  # the first is the default (see the module docstring)
CAFFENET_SIZES = (224, 227)
# Depth "convX" of Tables 4/5 -> CaffeNet boundary, per reading (absent: the boundary "convX" itself).
PLACEMENTS = {"conv_input": {}, "after_relu": {"conv2": "relu1", "conv3": "relu2"}}


def arguments(arg: str | None, **defaults) -> dict:
  """`get_config`'s argument for the paper's configs: dataset, split and runlocal, plus `defaults`."""
  args = parse_arg(arg, {"dataset": "ucf101", "split": 1, "runlocal": False, **defaults})
  if args["dataset"] not in DATASETS:
    raise ValueError(f"dataset is {args['dataset']!r}; expected one of {DATASETS}")
  if args["split"] not in (1, 2, 3):
    raise ValueError(f"split is {args['split']!r}; expected 1, 2 or 3")
  return args


def streams_config(arg: str | None, backbone: str, streams=STREAMS, default: str = "di"):
  """`get_config(arg)` of a table of whole streams of one backbone (Tables 7, 8, 9): `arg` names the
  dataset, split, runlocal and one of `streams` (`default` when unnamed).

  Raises:
    ValueError: an invalid argument, or a stream not in `streams`.
  """
  args = arguments(arg, stream=default, frame_streams=FRAME_STREAMS[0])
  if args["stream"] not in streams:
    raise ValueError(f"stream is {args['stream']!r}; expected one of {tuple(streams)}")
  return stream_config(args["dataset"], args["split"], args["stream"], backbone, args["runlocal"],
                       frame_streams=args["frame_streams"])


def split_stream_sweep(h, streams=STREAMS):
  """`get_hyper` of a table of whole streams: every split x every stream of `streams`."""
  return h.product([h.sweep("split", [1, 2, 3]), h.sweep("stream", list(streams))])


def insertion_boundary(depth: str, placement: str = "conv_input") -> str:
  """The CaffeNet boundary (`pool_at`) of Tables 4/5's depth "conv1".."conv5" in a `PLACEMENTS` reading."""
  if placement not in PLACEMENTS:
    raise ValueError(f"placement is {placement!r}; expected one of {tuple(PLACEMENTS)}")
  return PLACEMENTS[placement].get(depth, depth)


def stream_config(dataset: str, split: int, stream: str, backbone: str = "resnext50_32x4d",
                  runlocal: bool = False, frame_streams: str = FRAME_STREAMS[0],
                  caffenet_size: int = CAFFENET_SIZES[0], **model) -> ml_collections.ConfigDict:
  """The config of one stream of the paper (see the module docstring).

  `frame_streams` (SI, OF) and `caffenet_size` choose a reading of the paper (module docstring);
  `caffenet_size` is ignored for ResNeXt (224). `model` overrides the stream's windows and pooling for the
  ablations: window, stride (the input's windows, tau and s), pool_at, pooling, merge
  (`DynamicImageNetwork` fields).
  """
  if stream not in STREAMS:
    raise ValueError(f"stream is {stream!r}; expected one of {STREAMS}")
  if frame_streams not in FRAME_STREAMS:
    raise ValueError(f"frame_streams is {frame_streams!r}; expected one of {FRAME_STREAMS}")
  if caffenet_size not in CAFFENET_SIZES:
    raise ValueError(f"caffenet_size is {caffenet_size!r}; expected one of {CAFFENET_SIZES}")
  flow = stream in ("of", "dof")
  frames = stream in ("si", "of")
  softmax_mean = frames and frame_streams == "softmax_mean"
  caffenet = backbone == "caffenet"
  config = base_config()
  config.dataset.name = f"{dataset}_frames/split{split}"
  c = config.input
  c.modality = "flow" if flow else "rgb"
  c.window, c.stride = (1, 1) if frames else (10, 6)
  c.train_windows, c.test_windows = (1, 20) if softmax_mean else (10, 20)
  c.size = caffenet_size if caffenet else 224
  config.model.backbone = backbone
  config.model.pool_at = "conv1" if caffenet else "stem"
  config.model.dropout_rate = 0.8 if flow else 0.5
  if caffenet:
    config.optim.learning_rates = CAFFENET_RGB if not flow else RESNEXT_FLOW
  else:
    config.optim.learning_rates = RESNEXT_FLOW if flow else RESNEXT_RGB
  config.eval.aggregate = "mean" if softmax_mean else "network"
  for key, value in model.items():
    if key in ("window", "stride"):
      config.input[key] = value
    elif key in ("pool_at", "pooling", "merge"):
      config.model[key] = value
    else:
      raise ValueError(f"unknown override {key}={value!r}; expected window, stride, pool_at, pooling or "
                       "merge")
  return shrink(config) if runlocal else config


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The runlocal version of a config (see the module docstring)."""
  # "ucf101_frames/split3" -> "ucf101_frames/split1"; "..._dynamic_images/split3_rgb_single" -> ".../split1_rgb_single"
  name, variant = config.dataset.name.split("/")
  _, underscore, rest = variant.partition("_")
  config.dataset.name = f"{name}/split1{underscore}{rest}"
  config.dataset.mini = True
  if config.model.backbone.startswith("resnext"):
    config.model.backbone = "resnext_tiny"
    config.input.size = 64
    config.input.scales = (80, 64)
  else:
    config.input.scales = (64, 56)  # the miniature's frames have a short side of 64
  config.input.short_side = 0  # the scales above are stored pixels of those frames
  config.input.update(batch_size=2, repeat=1, num_workers=0, test_windows=2,
                      train_windows=min(config.input.train_windows, 2))
  config.optim.accumulation_steps = 1
  config.eval.batch_size = 2
  config.max_steps = 2
  config.log_every = 1
  config.checkpoint_every = 2
  return config
