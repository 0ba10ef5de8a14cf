"""The paper's streams on UCF101 and HMDB51 as configs, for the files of `experiments/`.

    config = stream_config("ucf101", split=1, stream="di", backbone="resnext50_32x4d")

A stream is one network of the paper (REFERENCE.md, "Training"): SI (RGB frames), DI (dynamic images of
windows of 10 frames every 6, ARP at the input, windows max-merged), OF (optical flow fields, 2 channels),
DOF (dynamic optical flow: ARP over windows of 10 flow fields). Frame streams train on `train_windows`
random frames per video and average the softmax scores of up to 20 frames at test; window streams see up
to 10 windows in training and 20 at test, merged inside the network. The learning rates, dropout and
batch are the reference's: ResNeXt RGB 1e-2 for 2 epochs then 1e-3 for 8, flow 1e-2, 1e-2, 1e-3, 1e-3;
CaffeNet RGB 1e-3 x [1, 1, 0.1, 0.1]; dropout 0.5 (RGB) / 0.8 (flow); 128 videos per update as 4 steps of
32; the training list 5 times per epoch.

`runlocal=True` shrinks a config to a smoke run on CPU: the miniature UCF101/HMDB51 of real clips
(`data_prep.mini`, split 1, prepared into <workdir>/mini_data on first use), two steps of two videos of
two windows, ResNeXt backbones replaced by `resnext_tiny` (same boundaries, so every `pool_at` stays
valid) at 64 x 64; CaffeNet keeps its 227 x 227 input.
"""

from __future__ import annotations

import ml_collections

from arp_jax import experiment

DATASETS = ("ucf101", "hmdb51")
STREAMS = ("si", "di", "of", "dof")
STREAM_NAMES = {"si": "SI", "di": "DI", "of": "OF", "dof": "DOF"}
RESNEXT_RGB = [1e-2] * 2 + [1e-3] * 8
RESNEXT_FLOW = [1e-2, 1e-2, 1e-3, 1e-3]
CAFFENET_RGB = [1e-3, 1e-3, 1e-4, 1e-4]


def arguments(arg: str | None, **defaults) -> dict:
  """`get_config`'s argument for the paper's configs: dataset, split and runlocal, plus `defaults`."""
  args = experiment.parse_arg(arg, {"dataset": "ucf101", "split": 1, "runlocal": False, **defaults})
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
  args = arguments(arg, stream=default)
  if args["stream"] not in streams:
    raise ValueError(f"stream is {args['stream']!r}; expected one of {tuple(streams)}")
  return stream_config(args["dataset"], args["split"], args["stream"], backbone, args["runlocal"])


def split_stream_sweep(h, streams=STREAMS):
  """`get_hyper` of a table of whole streams: every split x every stream of `streams`."""
  return h.product([h.sweep("split", [1, 2, 3]), h.sweep("stream", list(streams))])


def stream_config(dataset: str, split: int, stream: str, backbone: str = "resnext50_32x4d",
                  runlocal: bool = False, **model) -> ml_collections.ConfigDict:
  """The config of one stream of the paper (see the module docstring).

  `model` overrides the stream's windows and pooling for the ablations: window, stride (the input's
  windows, tau and s), pool_at, pooling, merge (`DynamicImageNetwork` fields).
  """
  if stream not in STREAMS:
    raise ValueError(f"stream is {stream!r}; expected one of {STREAMS}")
  flow = stream in ("of", "dof")
  frames = stream in ("si", "of")
  caffenet = backbone == "caffenet"
  config = experiment.base_config()
  config.dataset.name = f"{dataset}_frames/split{split}"
  c = config.input
  c.modality = "flow" if flow else "rgb"
  c.window, c.stride = (1, 1) if frames else (10, 6)
  c.train_windows, c.test_windows = (1, 20) if frames else (10, 20)
  c.size = 227 if caffenet else 224
  config.model.backbone = backbone
  config.model.pool_at = "conv1" if caffenet else "stem"
  config.model.dropout_rate = 0.8 if flow else 0.5
  if caffenet:
    config.optim.learning_rates = CAFFENET_RGB if not flow else RESNEXT_FLOW
  else:
    config.optim.learning_rates = RESNEXT_FLOW if flow else RESNEXT_RGB
  config.eval.aggregate = "mean" if frames else "network"
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
  config.input.update(batch_size=2, repeat=1, num_workers=0, train_windows=2, test_windows=2)
  config.optim.accumulation_steps = 1
  config.eval.batch_size = 2
  config.max_steps = 2
  config.log_every = 1
  config.checkpoint_every = 2
  return config
