"""Writes metrics.npz / metrics.json and torch_files/ by running the
official metric code, pytorch-fid and PyTorch on the CPU.

Not part of the test suite and not a dependency of sg3jax: it needs
PyTorch, torchvision, scipy, a checkout of NVlabs/stylegan3 (`--official`)
and of mseitzer/pytorch-fid (`--pytorch_fid`, the folder holding the
`pytorch_fid` package). README.md lists every key.

  python tests/official_extra/make_metrics_fixtures.py \
      --official=/path/to/stylegan3 --pytorch_fid=/path/to/pytorch-fid/src

* Inception: pytorch-fid's `fid_inception_v3` network with the seeded
  random weights of tests/metrics/detectors.py (no download), fed images
  preprocessed as the official detector does (affine_grid + grid_sample
  with the half-pixel theta shift, then (x - 128) / 128).
* FID, KID, precision/recall, IS: the official `compute_fid`,
  `compute_kid`, `compute_pr` and `compute_is` on fixed synthetic
  features (their feature-extraction calls replaced by the features).
* torch_files/: tiny weight files written by torch.save (zip and legacy)
  and torch.jit.save, for the safe reader.
"""

import argparse
import json
import pathlib
import sys
import types
from unittest import mock

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.metrics import detectors  # noqa: E402  pylint: disable=g-import-not-at-top

IMAGE_SEED = 7


def inception_cases(torch, fid_module):
  """Features and probabilities of the random-weight network."""
  F = torch.nn.functional
  with mock.patch.object(fid_module, "load_state_dict_from_url",
                         lambda *a, **k: None), \
      mock.patch("torch.nn.Module.load_state_dict", lambda *a, **k: None):
    net = fid_module.fid_inception_v3()
  keys = [(k, list(v.shape)) for k, v in net.state_dict().items()]
  state = {k: torch.from_numpy(v)
           for k, v in detectors.fid_state_dict(keys).items()}
  net.load_state_dict(state)
  net.eval()

  def preprocess(images):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).to(torch.float32)
    n, c, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / 299
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / 299
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, 299, 299], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                      align_corners=False)
    return (x - 128) / 128

  def features(x):
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3",
                 "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
                 "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                 "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                 "Mixed_7c", "avgpool"):
      x = getattr(net, name)(x)
    return torch.flatten(x, 1)

  rng = np.random.default_rng(IMAGE_SEED)
  out = {}
  for size in (256, 299):
    images = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    with torch.no_grad():
      x = preprocess(images)
      feats = features(x)
      probs = F.softmax(F.linear(feats, net.fc.weight, net.fc.bias), dim=1)
      probs_nb = F.softmax(F.linear(feats, net.fc.weight), dim=1)
    nhwc = x.permute(0, 2, 3, 1).numpy()
    out.update({
        f"inception/{size}/images": images,
        f"inception/{size}/resized_corner": nhwc[:, :12, :12, :],
        f"inception/{size}/resized_far_corner": nhwc[:, -12:, -12:, :],
        f"inception/{size}/features": feats.numpy(),
        f"inception/{size}/probs": probs.numpy(),
        f"inception/{size}/probs_no_bias": probs_nb.numpy(),
    })
  return out, keys


class _Stats:
  """Stands for metric_utils.FeatureStats results of fixed features."""

  def __init__(self, torch, metric_utils, features, batch):
    self.torch, self.features = torch, features
    self.stats = metric_utils.FeatureStats(capture_all=True,
                                           capture_mean_cov=True)
    for i in range(0, len(features), batch):
      self.stats.append(features[i:i + batch])

  def get_mean_cov(self):
    return self.stats.get_mean_cov()

  def get_all(self):
    return self.stats.get_all()

  def get_all_torch(self):
    return self.torch.from_numpy(self.get_all())


def formula_cases(torch, official):
  """The official compute functions on synthetic features."""
  from metrics import frechet_inception_distance as fid  # pylint: disable=g-import-not-at-top
  from metrics import inception_score
  from metrics import kernel_inception_distance as kid
  from metrics import metric_utils
  from metrics import precision_recall as pr
  del official
  rng = np.random.default_rng(11)
  real = (rng.standard_normal((300, 24)) * 0.6 + 0.2).astype(np.float32)
  gen = (rng.standard_normal((260, 24)) * 0.5 + 0.3).astype(np.float32)
  real_pr = rng.standard_normal((150, 8)).astype(np.float32)
  gen_pr = (rng.standard_normal((140, 8)) * 1.2 + 0.2).astype(np.float32)
  logits = rng.standard_normal((100, 10)).astype(np.float32) * 2
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  opts = types.SimpleNamespace(rank=0, num_gpus=1, device="cpu")
  out = {"fid/real": real, "fid/gen": gen, "pr/real": real_pr,
         "pr/gen": gen_pr, "is/probs": probs.astype(np.float32)}

  def patched(real_feats, gen_feats):
    return (mock.patch.object(
        metric_utils, "compute_feature_stats_for_dataset",
        lambda **kw: _Stats(torch, metric_utils, real_feats, 64)),
            mock.patch.object(
                metric_utils, "compute_feature_stats_for_generator",
                lambda **kw: _Stats(torch, metric_utils, gen_feats, 48)))

  p1, p2 = patched(real, gen)
  with p1, p2:
    out["fid/value"] = np.float64(fid.compute_fid(opts, None, len(gen)))
    stats = _Stats(torch, metric_utils, real, 64)
    out["fid/real_mu"], out["fid/real_sigma"] = stats.get_mean_cov()
    np.random.seed(5)
    out["kid/value"] = np.float64(kid.compute_kid(
        opts, None, len(gen), num_subsets=7, max_subset_size=100))
    np.random.seed(6)
    out["kid/small_subsets"] = np.float64(kid.compute_kid(
        opts, None, len(gen), num_subsets=3, max_subset_size=1000))

  # CPU torch has no float16 cdist: the distances of the float16 features
  # are computed in float32 and rounded to float16, as a GPU returns them.
  cdist = torch.cdist

  def cdist_fp16(a, b):
    return cdist(a.float(), b.float()).half()

  p1, p2 = patched(real_pr, gen_pr)
  with p1, p2, mock.patch.object(torch, "cdist", cdist_fp16):
    precision, recall = pr.compute_pr(opts, None, len(gen_pr), nhood_size=3,
                                      row_batch_size=64, col_batch_size=50)
  out["pr/precision"], out["pr/recall"] = np.float64(precision), np.float64(
      recall)
  _, p2 = patched(None, probs.astype(np.float32))
  with p2:
    mean, std = inception_score.compute_is(opts, num_gen=len(probs),
                                           num_splits=10)
  out["is/mean"], out["is/std"] = np.float64(mean), np.float64(std)
  return out


def torch_files(torch, outdir: pathlib.Path):
  """Tiny files written by PyTorch itself, and the arrays they hold."""
  outdir.mkdir(exist_ok=True)
  gen = torch.Generator().manual_seed(3)

  class Layer(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3, generator=gen))
      self.register_buffer("mean", torch.randn(4, generator=gen))
      self.beta = torch.nn.Parameter(torch.randn(4, generator=gen))

    def forward(self, x):
      return torch.nn.functional.conv2d(x, self.weight) - self.mean[
          None, :, None, None] + self.beta[None, :, None, None]

  class Net(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.layers = torch.nn.Sequential()
      self.layers.add_module("conv", Layer())
      self.output = torch.nn.Linear(4, 2)

    def forward(self, x, return_features: bool = False):
      y = self.layers(x).mean(dim=(2, 3))
      return y if return_features else self.output(y)

  net = Net()
  state = {k: v.detach().clone() for k, v in net.state_dict().items()}
  state["extra.half"] = torch.randn(3, generator=gen).half()
  state["extra.long"] = torch.arange(5)
  torch.save(state, outdir / "state_dict_zip.pth")
  torch.save(state, outdir / "state_dict_legacy.pth",
             _use_new_zipfile_serialization=False)
  torch.jit.save(torch.jit.script(net), outdir / "torchscript.pt")
  return {f"torch_files/{k}": v.numpy() for k, v in state.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--official", required=True)
  parser.add_argument("--pytorch_fid", required=True)
  args = parser.parse_args()
  # torchvision's compiled operators may not match the installed torch;
  # only its Python model definitions are used here.
  sys.modules.setdefault("torchvision._meta_registrations",
                         types.ModuleType("torchvision._meta_registrations"))
  sys.path.insert(0, args.pytorch_fid)
  sys.path.insert(0, args.official)
  import torch  # pylint: disable=g-import-not-at-top
  from pytorch_fid import inception as fid_module  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(2)
  arrays, keys = inception_cases(torch, fid_module)
  arrays.update(formula_cases(torch, args.official))
  arrays.update(torch_files(torch, HERE / "torch_files"))
  np.savez_compressed(HERE / "metrics.npz", **arrays)
  (HERE / "metrics.json").write_text(json.dumps({
      "torch": torch.__version__,
      "inception_state_dict": keys,
      "kid": {"value": {"seed": 5, "num_subsets": 7, "max_subset_size": 100},
              "small_subsets": {"seed": 6, "num_subsets": 3,
                                "max_subset_size": 1000}},
      "pr": {"nhood_size": 3, "row_batch_size": 64, "col_batch_size": 50},
      "is": {"num_splits": 10},
  }, indent=1) + "\n")


if __name__ == "__main__":
  main()
