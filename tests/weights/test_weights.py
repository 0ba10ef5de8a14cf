"""Weight conversion against PyTorch models built from torch.nn layers: ResNeXt-50 32x4d (torchvision's
layout, tests/support/torch_resnext.py) and CaffeNet (Caffe's layers: grouped convs, ceil-mode pooling, LRN),
with random weights and BatchNorm statistics; plus files (.pth, .safetensors, .npz), new classifiers,
flow conv1, errors naming the key, and Orbax checkpoints.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

import arp_jax
from arp_jax import models
from arp_jax import normalization
from arp_jax import weights

import torch_resnext  # tests/ helper, on sys.path under pytest

RESNEXT50 = models.ResNeXt50_32x4d()


@functools.partial(jax.jit, static_argnames=("model", "start", "stop"))
def run(model, variables, x, start=None, stop=None):
  return model.apply(variables, x, start=start, stop=stop)


def relative_error(got, want) -> float:
  """max |got - want| / max |want|."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.abs(got - want).max() / np.abs(want).max())


def nhwc(t: torch.Tensor) -> np.ndarray:
  return t.detach().permute(0, 2, 3, 1).numpy() if t.ndim == 4 else t.detach().numpy()


def assert_trees_equal(a, b, skip=()):
  flat_a = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(a)}
  flat_b = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_leaves_with_path(b)}
  assert flat_a.keys() == flat_b.keys()
  for key in flat_a:
    if not any(s in key for s in skip):
      np.testing.assert_array_equal(flat_a[key], flat_b[key], err_msg=key)


@pytest.fixture(scope="module")
def torch_model():
  torch.manual_seed(0)
  return torch_resnext.randomize(torch_resnext.ResNeXt(), seed=0)


@pytest.fixture(scope="module")
def state_dict(torch_model):
  return torch_model.state_dict()


@pytest.fixture(scope="module")
def converted(state_dict):
  return weights.from_torch(state_dict, "resnext50_32x4d")


def resnext_errors(model, variables, torch_model, x_nhwc) -> dict[str, float]:
  """Relative errors at every boundary after the input, each piece run from the PyTorch activation at
  its start (so errors do not compound), and of the whole chain of JAX pieces."""
  with torch.no_grad():
    want = torch_model.activations(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2))
  want = {name: nhwc(value) for name, value in want.items()}
  errors, x = {}, jnp.asarray(x_nhwc)
  bounds = model.BOUNDARIES
  for start, stop in zip(bounds[:-1], bounds[1:]):
    x = run(model, variables, x, start=start, stop=stop)
    errors[stop] = relative_error(x, want[stop])
  errors["logits (from input)"] = relative_error(run(model, variables, jnp.asarray(x_nhwc)), want["logits"])
  return errors


def test_resnext50_matches_pytorch(torch_model, converted):
  x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)
  errors = resnext_errors(RESNEXT50, converted, torch_model, x)
  print("ResNeXt-50 relative errors:", {k: f"{v:.1e}" for k, v in errors.items()})
  assert set(errors) >= {"res2", "res3", "res4", "res5", "merge", "logits"}
  assert max(errors.values()) <= 1e-4, errors


def test_resnext_tree_and_layouts(converted, state_dict):
  abstract = jax.eval_shape(RESNEXT50.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  assert jax.tree.structure(converted) == jax.tree.structure(abstract)
  assert all(a.shape == b.shape and b.dtype == jnp.float32
             for a, b in zip(jax.tree.leaves(abstract), jax.tree.leaves(converted)))
  params, stats = converted["params"], converted["batch_stats"]
  # Grouped conv: (O, I/g, kh, kw) -> (kh, kw, I/g, O).
  np.testing.assert_array_equal(params["layer3_2"]["conv2"]["kernel"],
                                state_dict["layer3.2.conv2.weight"].numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["layer2_0"]["downsample_bn"]["scale"],
                                state_dict["layer2.0.downsample.1.weight"].numpy())
  np.testing.assert_array_equal(stats["layer4_2"]["bn3"]["var"],
                                state_dict["layer4.2.bn3.running_var"].numpy())
  np.testing.assert_array_equal(params["fc"]["kernel"], state_dict["fc.weight"].numpy().T)


def test_resnext_from_safetensors_and_pth_files(tmp_path, state_dict, converted):
  safetensors.torch.save_file(dict(state_dict), tmp_path / "r50.safetensors")
  assert_trees_equal(weights.from_torch(tmp_path / "r50.safetensors", "resnext50_32x4d"), converted)
  # A training checkpoint wrapping the state dict, with DataParallel's "module." prefix.
  wrapped = {f"module.{k}": v for k, v in state_dict.items()}
  torch.save({"epoch": 3, "state_dict": wrapped}, tmp_path / "r50.pth")
  assert_trees_equal(weights.from_torch(str(tmp_path / "r50.pth"), "resnext50_32x4d"), converted)


def test_resnext_new_classifier(state_dict, converted):
  variables = weights.from_torch(state_dict, "resnext50_32x4d", num_classes=101)
  fc = variables["params"]["fc"]
  assert fc["kernel"].shape == (2048, 101) and fc["bias"].shape == (101,)
  assert abs(float(jnp.std(fc["kernel"])) - 0.01) < 1e-3
  np.testing.assert_array_equal(fc["bias"], 0)
  assert_trees_equal(variables, jax.tree.map(lambda x: x, converted), skip=("'fc'",))
  # Reproducible by default, and drawn from `rng` when given.
  again = weights.from_torch(state_dict, "resnext50_32x4d", num_classes=101)
  np.testing.assert_array_equal(again["params"]["fc"]["kernel"], fc["kernel"])
  other = weights.from_torch(state_dict, "resnext50_32x4d", num_classes=101, rng=jax.random.key(7))
  assert not np.allclose(other["params"]["fc"]["kernel"], fc["kernel"])
  # The checkpoint's own class count converts its classifier.
  same = weights.from_torch(state_dict, "resnext50_32x4d", num_classes=1000)
  np.testing.assert_array_equal(same["params"]["fc"]["kernel"], converted["params"]["fc"]["kernel"])


def test_resnext_flow_conv1(torch_model, state_dict, converted):
  rgb = converted["params"]["conv1"]["kernel"]  # [7, 7, 3, 64]
  first = weights.from_torch(state_dict, "resnext50_32x4d", in_channels=2)
  mean = weights.from_torch(state_dict, "resnext50_32x4d", in_channels=2, flow_init="mean")
  np.testing.assert_array_equal(first["params"]["conv1"]["kernel"], rgb[:, :, :2])
  np.testing.assert_allclose(mean["params"]["conv1"]["kernel"],
                             np.repeat(np.mean(rgb, axis=2, keepdims=True), 2, axis=2), rtol=1e-6)
  assert_trees_equal(first, converted, skip=("'conv1'",))
  # The 2-channel model against the PyTorch model whose conv1 keeps the first two input channels.
  flow = torch_resnext.ResNeXt(in_channels=2)
  flow.load_state_dict({**state_dict, "conv1.weight": state_dict["conv1.weight"][:, :2]})
  flow.eval()
  x = np.random.default_rng(1).standard_normal((1, 64, 64, 2)).astype(np.float32)
  with torch.no_grad():
    want = flow(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  model = models.ResNeXt50_32x4d(in_channels=2)
  assert relative_error(run(model, first, jnp.asarray(x)), want) <= 1e-4


def test_resnext_errors_name_the_key(state_dict, tmp_path):
  missing = {k: v for k, v in state_dict.items() if k != "layer2.1.bn2.running_var"}
  with pytest.raises(ValueError, match=r"missing key 'layer2\.1\.bn2\.running_var'"):
    weights.from_torch(missing, "resnext50_32x4d")
  extra = {**state_dict, "layer4.3.conv1.weight": torch.zeros(1024, 2048, 1, 1)}
  with pytest.raises(ValueError, match=r"unexpected key 'layer4\.3\.conv1\.weight'"):
    weights.from_torch(extra, "resnext50_32x4d")
  wrong = {**state_dict, "layer3.0.conv2.weight": torch.zeros(512, 32, 3, 3)}
  with pytest.raises(ValueError, match=r"layer3\.0\.conv2\.weight has shape \(512, 32, 3, 3\); "
                                       r"expected \(512, 16, 3, 3\)"):
    weights.from_torch(wrong, "resnext50_32x4d")
  # A ResNeXt-50 checkpoint read as ResNeXt-101 lacks the extra blocks of stage 3.
  with pytest.raises(ValueError, match=r"missing key 'layer3\.6\.\w+\.\w+' \(and \d+ more"):
    weights.from_torch(state_dict, "resnext101_32x4d")
  with pytest.raises(FileNotFoundError, match="no such weights file"):
    weights.from_torch(tmp_path / "nothing.pth", "resnext50_32x4d")
  (tmp_path / "weights.h5").write_bytes(b"")
  with pytest.raises(ValueError, match="unknown weights format '.h5'"):
    weights.from_torch(tmp_path / "weights.h5", "resnext50_32x4d")
  with pytest.raises(ValueError, match="arch='resnet50'"):
    weights.from_torch(state_dict, "resnet50")
  with pytest.raises(ValueError, match="flow_init='average'"):
    weights.from_torch(state_dict, "resnext50_32x4d", in_channels=2, flow_init="average")
  with pytest.raises(ValueError, match="flow_init='first' cannot make 4"):
    weights.from_torch(state_dict, "resnext50_32x4d", in_channels=4)
  with pytest.raises(ValueError, match="num_classes=0; expected a positive int"):
    weights.from_torch(state_dict, "resnext50_32x4d", num_classes=0)
  with pytest.raises(TypeError, match="in_channels='2'"):
    weights.from_torch(state_dict, "resnext50_32x4d", in_channels="2")


def test_orbax_round_trip_and_convert(tmp_path, state_dict, converted):
  directory = weights.save(converted, tmp_path / "ckpt")
  loaded = weights.load(directory)
  assert_trees_equal(loaded, converted)
  assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(loaded))
  with pytest.raises(FileExistsError, match="already exists"):
    weights.save(converted, tmp_path / "ckpt")
  with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
    weights.load(tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="not an Orbax checkpoint"):
    weights.load(tmp_path / "empty")
  # What `arp-jax convert` runs: file in, checkpoint out.
  safetensors.torch.save_file(dict(state_dict), tmp_path / "r50.safetensors")
  out = weights.convert("resnext50_32x4d", tmp_path / "r50.safetensors", tmp_path / "out", in_channels=2)
  flow = weights.load(out)
  assert flow["params"]["conv1"]["kernel"].shape == (7, 7, 2, 64)
  assert_trees_equal(flow, converted, skip=("'conv1'",))


def test_checkpoints_record_the_input_convention_of_their_weights(tmp_path, state_dict, converted):
  safetensors.torch.save_file(dict(state_dict), tmp_path / "r50.safetensors")
  for in_channels, flow_init, modality in ((3, "first", "rgb"), (2, "first", "flow"), (2, "mean", "flow")):
    out = weights.convert("resnext50_32x4d", tmp_path / "r50.safetensors",
                          tmp_path / f"r50_{in_channels}_{flow_init}", in_channels=in_channels,
                          flow_init=flow_init)
    recorded = weights.read_convention(out)
    assert recorded == normalization.convention("torchvision", modality, flow_init)
    assert weights.load(out)["params"]["conv1"]["kernel"].shape == (7, 7, in_channels, 64)
  # The flow variant divides u and v by the stds of the RGB filters conv1 was made from.
  assert recorded.channels == "uv" and recorded.flow_init == "mean"
  np.testing.assert_allclose(recorded.offset, [128, 128], rtol=1e-6)
  np.testing.assert_allclose(recorded.gain, 3 / (255 * (0.229 + 0.224 + 0.225)), rtol=1e-6)
  first = weights.read_convention(tmp_path / "r50_2_first")
  np.testing.assert_allclose(first.gain, [1 / (255 * 0.229), 1 / (255 * 0.224)], rtol=1e-6)

  # `save` records "reference" (training from scratch) unless told; a checkpoint without a record is
  # read as "reference", for the modality of its conv1.
  plain = weights.save(converted, tmp_path / "plain")
  assert weights.read_convention(plain) == normalization.convention("reference")
  (plain / weights.CONVENTION_FILE).unlink()
  assert weights.read_convention(plain) == normalization.convention("reference")
  assert_trees_equal(weights.load(plain), converted)
  (tmp_path / "r50_2_first" / weights.CONVENTION_FILE).unlink()
  assert weights.read_convention(tmp_path / "r50_2_first") == normalization.convention("reference", "flow")
  (plain / weights.CONVENTION_FILE).write_text('{"name": "torchvision"}')
  with pytest.raises(ValueError, match="does not hold an input convention"):
    weights.read_convention(plain)
  with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
    weights.read_convention(tmp_path / "missing")
  flow = weights.load(tmp_path / "r50_2_mean")
  with pytest.raises(ValueError, match="the input convention is for rgb"):
    weights.save(flow, tmp_path / "wrong", convention=normalization.convention("torchvision"))


def test_torchvision_weights_on_our_normalisation_give_torchs_logits(tmp_path, torch_model, state_dict):
  """An image through the pipeline's normalisation, with the convention the converted checkpoint
  records, into our ResNeXt-50 = torch's ResNeXt-50 on torchvision's own normalisation."""
  from arp_jax import input as input_pipeline  # pylint: disable=import-outside-toplevel
  safetensors.torch.save_file(dict(state_dict), tmp_path / "r50.safetensors")
  out = weights.convert("resnext50_32x4d", tmp_path / "r50.safetensors", tmp_path / "r50")
  frames = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
  x = input_pipeline.augment(frames, (0, 0, 64, 64, False), 64, "rgb",
                             convention=weights.read_convention(out))
  np.testing.assert_array_equal(x, arp_jax.normalize(frames, "torchvision"))  # the crop is the frame
  with torch.no_grad():
    image = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # torchvision's ToTensor
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    want = torch_model((image - mean[:, None, None]) / std[:, None, None]).numpy()  # its Normalize
  variables = weights.load(out)
  assert relative_error(run(RESNEXT50, variables, jnp.asarray(x)), want) <= 1e-4
  # The reference's 0..255 input is about 57 times larger: the logits differ.
  assert relative_error(run(RESNEXT50, variables, jnp.asarray(arp_jax.normalize(frames))), want) > 0.1


def test_convert_command(tmp_path, state_dict, capsys):
  from arp_jax import cli
  torch.save(state_dict, tmp_path / "r50.pth")
  argv = ["convert", "--arch", "resnext50_32x4d", str(tmp_path / "r50.pth"), str(tmp_path / "out"),
          "--num-classes", "101"]
  assert cli.main(argv) == 0
  assert "wrote" in capsys.readouterr().out
  expected = weights.from_torch(state_dict, "resnext50_32x4d", num_classes=101)
  assert_trees_equal(weights.load(tmp_path / "out"), expected)
  assert cli.main(argv) == 2  # the output exists: one line, no traceback
  assert "already exists" in capsys.readouterr().err
  assert cli.main(["convert", "--arch", "caffenet", str(tmp_path / "none.npz"), str(tmp_path / "c")]) == 2
  assert "none.npz" in capsys.readouterr().err


# CaffeNet ------------------------------------------------------------------------------------------------


def torch_caffenet(num_classes: int = 1000) -> nn.Sequential:
  """BVLC CaffeNet from torch.nn layers: Caffe's ceil-mode pooling (ceil_mode=True), LRN whose alpha is
  divided by the window size (torch's LocalResponseNorm does that too, checked in test_models.py), and
  fc6 reading pool5 flattened in C, H, W order."""
  pool = functools.partial(nn.MaxPool2d, 3, 2, ceil_mode=True)
  lrn = functools.partial(nn.LocalResponseNorm, 5, alpha=1e-4, beta=0.75, k=1.0)
  return nn.Sequential(
      nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), pool(), lrn(),
      nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), pool(), lrn(),
      nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
      nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
      nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), pool(), nn.Flatten(),
      nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
      nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
      nn.Linear(4096, num_classes)).eval()


CAFFE_LAYERS = {"conv1": 0, "conv2": 4, "conv3": 8, "conv4": 10, "conv5": 12, "fc6": 16, "fc7": 19,
                "fc8": 22}


@pytest.fixture(scope="module")
def caffe_model():
  torch.manual_seed(0)
  model = torch_caffenet()
  with torch.no_grad():
    for layer in model:
      if isinstance(layer, (nn.Conv2d, nn.Linear)):
        layer.weight.normal_(0, (2.0 / layer.weight[0].numel()) ** 0.5)
        layer.bias.normal_(0, 0.1)
  return model


@pytest.fixture(scope="module")
def caffe_npz(caffe_model, tmp_path_factory):
  """The model's blobs in Caffe's layout, as `from_caffe_npz` reads them."""
  path = tmp_path_factory.mktemp("caffe") / "caffenet.npz"
  blobs = {}
  for name, index in CAFFE_LAYERS.items():
    blobs[f"{name}_w"] = caffe_model[index].weight.detach().numpy()
    blobs[f"{name}_b"] = caffe_model[index].bias.detach().numpy()
  np.savez(path, **blobs)
  return path


@pytest.fixture(scope="module")
def caffe_converted(caffe_npz):
  return weights.from_caffe_npz(caffe_npz)


def test_caffenet_matches_pytorch(caffe_model, caffe_converted):
  variables = caffe_converted
  # Images in Caffe's range (0..255 minus the mean), so LRN's denominator differs clearly from 1.
  x = np.random.default_rng(0).uniform(-128, 128, (2, 227, 227, 3)).astype(np.float32)
  with torch.no_grad():
    # Ours takes R, G, B; Caffe's layers B, G, R.
    xt = torch.from_numpy(x[..., ::-1].copy()).permute(0, 3, 1, 2)
    want_merge = nhwc(caffe_model[:13](xt))
    want = caffe_model(xt).numpy()
  model = models.CaffeNet()
  errors = {"merge": relative_error(run(model, variables, jnp.asarray(x), stop="merge"), want_merge),
            "logits": relative_error(run(model, variables, jnp.asarray(x)), want)}
  print("CaffeNet relative errors:", {k: f"{v:.1e}" for k, v in errors.items()})
  assert max(errors.values()) <= 1e-4, errors


def test_caffenet_takes_rgb_minus_the_mean_as_caffe_takes_bgr(caffe_npz, tmp_path):
  """A Caffe model whose conv1 sees only red (Caffe's input channel 2): an RGB image through our
  normalisation and CaffeNet gives the logits of Caffe's computation on the BGR image minus the BGR mean."""
  blobs = dict(np.load(caffe_npz))
  blobs["conv1_w"] = blobs["conv1_w"].copy()
  blobs["conv1_w"][:, :2] = 0  # B and G
  np.savez(tmp_path / "red.npz", **blobs)
  # Colours whose channels differ, so that reading blue or green instead of red changes the logits.
  rgb = np.random.default_rng(3).integers(0, 256, (1, 227, 227, 3), dtype=np.uint8)
  rgb[..., 2] //= 4

  caffe = torch_caffenet()
  with torch.no_grad():
    for name, index in CAFFE_LAYERS.items():
      caffe[index].weight.copy_(torch.from_numpy(blobs[f"{name}_w"]))
      caffe[index].bias.copy_(torch.from_numpy(blobs[f"{name}_b"]))
    bgr = rgb[..., ::-1].astype(np.float32) - np.float32([104.00698793, 116.66876762, 122.67891434])
    want = caffe(torch.from_numpy(bgr).permute(0, 3, 1, 2)).numpy()

  variables = weights.from_caffe_npz(tmp_path / "red.npz")
  x = arp_jax.normalize(rgb, normalization.convention("caffe"))
  assert relative_error(run(models.CaffeNet(), variables, jnp.asarray(x)), want) <= 1e-4


def test_caffenet_options_and_errors(caffe_npz, caffe_converted, tmp_path):
  blobs = dict(np.load(caffe_npz))
  base = caffe_converted
  # fc6 given as a 4-D blob [4096, 256, 6, 6] converts the same.
  four_d = weights.from_caffe_npz({**blobs, "fc6_w": blobs["fc6_w"].reshape(4096, 256, 6, 6)})
  np.testing.assert_array_equal(four_d["params"]["fc6"]["kernel"], base["params"]["fc6"]["kernel"])
  # fc6 row for input (h, w, c) is Caffe's column c * 36 + h * 6 + w.
  np.testing.assert_array_equal(base["params"]["fc6"]["kernel"][(2 * 6 + 5) * 256 + 7],
                                blobs["fc6_w"][:, 7 * 36 + 2 * 6 + 5])
  # conv1 is turned from Caffe's B, G, R to R, G, B; a flow conv1 keeps the R and G filters ("first").
  np.testing.assert_array_equal(base["params"]["conv1"]["kernel"],
                                blobs["conv1_w"][:, ::-1].transpose(2, 3, 1, 0))
  first = weights.from_caffe_npz(caffe_npz, in_channels=2)
  np.testing.assert_array_equal(first["params"]["conv1"]["kernel"],
                                blobs["conv1_w"][:, [2, 1]].transpose(2, 3, 1, 0))
  flow = weights.from_caffe_npz(caffe_npz, num_classes=51, in_channels=2, flow_init="mean")
  np.testing.assert_allclose(flow["params"]["conv1"]["kernel"],
                             np.repeat(base["params"]["conv1"]["kernel"].mean(2, keepdims=True), 2, 2),
                             rtol=1e-6)
  assert flow["params"]["fc8"]["kernel"].shape == (4096, 51)
  np.testing.assert_array_equal(flow["params"]["fc8"]["bias"], 0)
  assert_trees_equal(flow, base, skip=("'conv1'", "'fc8'"))
  with pytest.raises(ValueError, match="missing key 'conv3_b'"):
    weights.from_caffe_npz({k: v for k, v in blobs.items() if k != "conv3_b"})
  with pytest.raises(ValueError, match="unexpected key 'fc9_w'"):
    weights.from_caffe_npz({**blobs, "fc9_w": blobs["fc8_w"]})
  with pytest.raises(ValueError, match=r"conv2_w has shape \(256, 96, 5, 5\); expected \(256, 48, 5, 5\)"):
    weights.from_caffe_npz({**blobs, "conv2_w": np.zeros((256, 96, 5, 5), np.float32)})
  with pytest.raises(FileNotFoundError, match="no such weights file"):
    weights.from_caffe_npz(tmp_path / "missing.npz")
  out = weights.convert("caffenet", caffe_npz, tmp_path / "caffenet", num_classes=51)
  assert weights.load(out)["params"]["fc8"]["kernel"].shape == (4096, 51)
  assert weights.read_convention(out) == normalization.convention("caffe")
