"""Writes metrics.npz / metrics.json and torch_files/ by running the
official metric code, pytorch-fid and PyTorch on the CPU.

Not part of the test suite and not a dependency of sg3jax: it needs
PyTorch, torchvision, scipy, a checkout of NVlabs/stylegan3 (`--official`)
and of mseitzer/pytorch-fid (`--pytorch_fid`, the folder holding the
`pytorch_fid` package), and the generator fixtures of ../shared/official
(`--shared_official`). README.md lists every key.

  python tests/official_extra/make_metrics_fixtures.py \
      --official=/path/to/stylegan3 --pytorch_fid=/path/to/pytorch-fid/src

* Inception: pytorch-fid's `fid_inception_v3` network with the seeded
  random weights of tests/metrics/detectors.py (no download), fed images
  preprocessed as the official detector does (affine_grid + grid_sample
  with the half-pixel theta shift, then (x - 128) / 128).
* VGG16: torchvision's VGG16 with the seeded random weights of
  tests/metrics/detectors.py under the official detector's names, and the
  LPIPS computation of Zhang et al., as sg3jax.metrics.vgg16 describes the
  official vgg16.pkl (whose TorchScript code is not public): features,
  probabilities, LPIPS vectors and distances.
* PPL: the official `compute_ppl` (ppl2_wend settings) on the official
  StyleGAN3-T generator of ../shared/official/g_t64 and the StyleGAN2
  `resnet` generator of stylegan2.npz, with that VGG16; its random draws
  (latents, noise buffers) and per-sample distances are recorded.
* FID, KID, precision/recall, IS: the official `compute_fid`,
  `compute_kid`, `compute_pr` and `compute_is` on fixed synthetic
  features (their feature-extraction calls replaced by the features).
* torch_files/: tiny weight files written by torch.save (zip and legacy)
  and torch.jit.save, for the safe reader.
"""

import argparse
import importlib.util
import json
import pathlib
import re
import sys
import types
from unittest import mock

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.metrics import detectors  # noqa: E402  pylint: disable=g-import-not-at-top

IMAGE_SEED = 7


def tf_resize(torch, x, size):
  """The official detectors' resize of x `[N, C, H, W]` to size^2:
  affine_grid + grid_sample with the half-pixel theta shift."""
  F = torch.nn.functional
  n, c, h, w = x.shape
  theta = torch.eye(2, 3)
  theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
  theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
  theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
  grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
  return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                       align_corners=False)


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
    return (tf_resize(torch, x, 299) - 128) / 128

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


# Head of the VGG16 parity weights: the official conv widths and fc1 input
# (7 x 7 x 512), a narrower fc1/fc2 (256, not 4096) to keep the random
# weights at 30 MB.
VGG16_HEAD = {"num_features": 256, "num_classes": 1000}
# torchvision VGG16 `features` indices of the ReLUs LPIPS reads
# (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
_LPIPS_RELUS = (3, 8, 15, 22, 29)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ReferenceVGG16:
  """The network sg3jax.metrics.vgg16 describes, in PyTorch: torchvision's
  VGG16 (features, avgpool, classifier) and Zhang et al.'s LPIPS, with
  the official detector's call signature and tensor names. (Holds no
  module object: the official PPLSampler deep-copies it.)"""

  def __init__(self, torch, torchvision, state, *, num_features,
               num_classes):
    nn = torch.nn
    net = torchvision.models.vgg16(weights=None)
    net.classifier[0] = nn.Linear(512 * 7 * 7, num_features)
    net.classifier[3] = nn.Linear(num_features, num_features)
    net.classifier[6] = nn.Linear(num_features, num_classes)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    fcs = [net.classifier[i] for i in (0, 3, 6)]
    t = {k: torch.from_numpy(v) for k, v in state.items()}
    with torch.no_grad():
      for i, conv in enumerate(convs, 1):
        conv.weight.copy_(t[f"layers.conv{i}.weight"])
        conv.bias.copy_(t[f"layers.conv{i}.bias"])
      for i, fc in enumerate(fcs, 1):
        fc.weight.copy_(t[f"layers.fc{i}.weight"])
        fc.bias.copy_(t[f"layers.fc{i}.bias"])
    self.net = net.eval().requires_grad_(False)
    # LPIPS "lin" layers: 1x1 convs without bias, weights [1, C, 1, 1].
    self.lins = [t[f"lpips{s}"].reshape(1, -1, 1, 1) for s in range(5)]
    self.mean = torch.tensor(_IMAGENET_MEAN).reshape(1, 3, 1, 1)
    self.std = torch.tensor(_IMAGENET_STD).reshape(1, 3, 1, 1)

  def to(self, *unused):
    return self

  def stages(self, x, *, lpips=False):
    """The five LPIPS feature maps and the last max pool's output (the
    last ReLU's with `lpips`: the pool is not needed then)."""
    maps = []
    layers = self.net.features[:_LPIPS_RELUS[-1] + 1] if lpips else (
        self.net.features)
    for i, layer in enumerate(layers):
      x = layer(x)
      if i in _LPIPS_RELUS:
        maps.append(x)
    return maps, x

  @staticmethod
  def unit(f):
    import torch  # pylint: disable=g-import-not-at-top
    return f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)

  def __call__(self, img, resize_images=True, return_features=False,
               return_lpips=False):
    import torch  # pylint: disable=g-import-not-at-top
    x = img.to(torch.float32)
    if resize_images:
      x = tf_resize(torch, x, 224)
    x = (x / 255 - self.mean) / self.std
    maps, x = self.stages(x, lpips=return_lpips)
    if return_lpips:
      vectors = []
      for f, w in zip(maps, self.lins):
        scale = torch.sqrt(w / (f.shape[2] * f.shape[3]))
        vectors.append((self.unit(f) * scale).permute(0, 2, 3, 1)
                       .flatten(1))
      return torch.cat(vectors, dim=1)
    x = torch.flatten(self.net.avgpool(x), 1)
    features = self.net.classifier[:5](x)
    if return_features:
      return features
    return torch.softmax(self.net.classifier[5:](features), dim=1)

  def lpips_distance(self, a, b):
    """Zhang et al.'s LPIPS of image batches a, b `[N, 3, H, W]` in
    [0, 255]: sum over stages of the spatial mean of lin((n_a - n_b)^2)."""
    import torch  # pylint: disable=g-import-not-at-top
    F = torch.nn.functional
    maps_a, _ = self.stages((a / 255 - self.mean) / self.std, lpips=True)
    maps_b, _ = self.stages((b / 255 - self.mean) / self.std, lpips=True)
    total = 0
    for fa, fb, w in zip(maps_a, maps_b, self.lins):
      diff = (self.unit(fa) - self.unit(fb)) ** 2
      total = total + F.conv2d(diff, w).mean(dim=(1, 2, 3))
    return total


def reference_vgg16(torch, torchvision, **head):
  return ReferenceVGG16(torch, torchvision, detectors.vgg16_state_dict(
      **head), **head)


def vgg16_cases(torch, torchvision):
  """Features, probabilities and LPIPS of the reference VGG16."""
  vgg = reference_vgg16(torch, torchvision, **VGG16_HEAD)
  rng = np.random.default_rng(IMAGE_SEED + 1)
  images = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
  lpips_images = rng.uniform(0, 255, (4, 16, 24, 3)).astype(np.float32)
  with torch.no_grad():
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    resized = tf_resize(torch, x.to(torch.float32), 224).permute(0, 2, 3, 1)
    y = torch.from_numpy(lpips_images).permute(0, 3, 1, 2)
    out = {
        "vgg16/images": images,
        "vgg16/resized_corner": resized[:, :12, :12].numpy(),
        "vgg16/resized_far_corner": resized[:, -12:, -12:].numpy(),
        "vgg16/features": vgg(x, return_features=True).numpy(),
        "vgg16/probs": vgg(x).numpy(),
        "vgg16/lpips_images": lpips_images,
        "vgg16/lpips": vgg(y, resize_images=False,
                           return_lpips=True).numpy(),
        "vgg16/lpips_distance": vgg.lpips_distance(y[0::2], y[1::2]).numpy(),
    }
  return out


# name: (generator source, samples, batch size per step).
PPL_CASES = {"t64": ("g_t64", 8, 4), "sg2_resnet": ("resnet", 4, 2)}
# The metric's epsilon, and a larger one at which float32 rounding is
# negligible against the perturbation (a tight check of the pipeline).
PPL_EPSILONS = (1e-4, 1e-2)
# Synthetic distances for the official outlier filter (> 100 values, so
# that the 1st/99th percentiles drop some).
PPL_FILTER_SAMPLES = 1000


def _official_generator(torch, kind, shared_official):
  """An official generator with the weights of a fixture: StyleGAN3-T
  (`g_t64` of ../shared/official) or a StyleGAN2 of stylegan2.npz."""
  from training import networks_stylegan2  # pylint: disable=g-import-not-at-top
  from training import networks_stylegan3  # pylint: disable=g-import-not-at-top
  if kind == "g_t64":
    npz, prefix = pathlib.Path(shared_official) / "g_t64.npz", "state/"
    kwargs = json.loads(npz.with_suffix(".json").read_text())["state"][
        "init_kwargs"]
    G = networks_stylegan3.Generator(**kwargs)
  else:
    npz, prefix = HERE / "stylegan2.npz", f"{kind}/state/"
    kwargs = json.loads((HERE / "stylegan2.json").read_text())[
        "generators"][kind]
    G = networks_stylegan2.Generator(**kwargs)
  with np.load(npz) as arrays:
    G.load_state_dict({k[len(prefix):]: torch.from_numpy(arrays[k])
                       for k in arrays.files if k.startswith(prefix)})
  return G.eval().requires_grad_(False)


def _percentile(a, q, interpolation=None, **kwargs):
  """np.percentile taking the official's `interpolation=` (NumPy 2 calls
  it `method=`)."""
  return _NP_PERCENTILE(a, q, method=interpolation, **kwargs)


_NP_PERCENTILE = np.percentile


def _official_ppl(torch, G, vgg, *, num, batch, epsilon):
  """The official compute_ppl of G: (value, per-sample distances, the
  random draws in order)."""
  from metrics import metric_utils  # pylint: disable=g-import-not-at-top
  from metrics import perceptual_path_length as ppl  # pylint: disable=g-import-not-at-top
  from tests.official_extra.make_fixtures import RandomRecorder  # pylint: disable=g-import-not-at-top
  sampler_forward = ppl.PPLSampler.forward
  dists = []

  def recording_forward(self, c):
    d = sampler_forward(self, c)
    dists.append(d.clone())
    return d

  opts = metric_utils.MetricOptions(G=G, num_gpus=1, rank=0,
                                    device=torch.device("cpu"), cache=False)
  torch.manual_seed(0)
  with mock.patch.object(metric_utils, "get_feature_detector",
                         lambda *a, **k: vgg), \
      mock.patch.object(ppl.PPLSampler, "forward", recording_forward), \
      mock.patch.object(np, "percentile", _percentile), \
      RandomRecorder(torch) as recorder, torch.no_grad():
    value = ppl.compute_ppl(opts, num_samples=num, epsilon=epsilon,
                            space="w", sampling="end", crop=False,
                            batch_size=batch)
  return value, torch.cat(dists).numpy(), recorder.draws


def ppl_cases(torch, torchvision, shared_official):
  """The official compute_ppl (W space, endpoint sampling, no crop) at
  each of PPL_EPSILONS, with the same seed (so the same draws)."""
  from metrics import metric_utils  # pylint: disable=g-import-not-at-top
  from metrics import perceptual_path_length as ppl  # pylint: disable=g-import-not-at-top
  vgg = reference_vgg16(torch, torchvision, **VGG16_HEAD)
  out, params = {}, {}
  for case, (source, num, batch) in PPL_CASES.items():
    G = _official_generator(torch, source, shared_official)
    noise_names = [n for n, _ in G.named_buffers()
                   if n.endswith(".noise_const")]
    runs = {eps: _official_ppl(torch, G, vgg, num=num, batch=batch,
                               epsilon=eps) for eps in PPL_EPSILONS}
    draws = runs[PPL_EPSILONS[0]][2]
    for _, _, other in runs.values():
      assert all(a[0] == b[0] and (a[1] == b[1]).all()
                 for a, b in zip(draws, other))
    draws_per_batch = 2 + len(noise_names)  # t, z, then each noise buffer
    num_batches = len(draws) // draws_per_batch
    z0, z1 = [], []
    for b in range(num_batches):
      # t = rand * 0 for endpoint sampling: its draw is not used.
      (t_fn, _), (z_fn, z), *noise = draws[
          b * draws_per_batch:(b + 1) * draws_per_batch]
      assert (t_fn, z_fn) == ("rand", "randn"), (t_fn, z_fn)
      z0.append(z[:batch])
      z1.append(z[batch:])
      for name, (fn, buf) in zip(noise_names, noise):
        assert fn == "randn_like", fn
        out[f"ppl/{case}/noise{b}/{name}"] = buf.numpy()
    out[f"ppl/{case}/z0"] = torch.cat(z0).numpy()
    out[f"ppl/{case}/z1"] = torch.cat(z1).numpy()
    for eps, (value, dist, _) in runs.items():
      out[f"ppl/{case}/eps{eps:g}/dist"] = dist
      out[f"ppl/{case}/eps{eps:g}/ppl"] = np.float64(value)
    params[case] = {"generator": source, "num_samples": num,
                    "batch_size": batch, "num_batches": num_batches,
                    "noise_buffers": noise_names}
  # The outlier filter alone, on synthetic distances.
  dist = np.random.default_rng(13).lognormal(3, 1, PPL_FILTER_SAMPLES)
  G = _official_generator(torch, "resnet", shared_official)
  opts = metric_utils.MetricOptions(G=G, num_gpus=1, rank=0,
                                    device=torch.device("cpu"), cache=False)
  batches = iter(torch.from_numpy(dist.astype(np.float32)).split(100))
  with mock.patch.object(metric_utils, "get_feature_detector",
                         lambda *a, **k: vgg), \
      mock.patch.object(ppl.PPLSampler, "forward",
                        lambda self, c: next(batches)), \
      mock.patch.object(np, "percentile", _percentile):
    value = ppl.compute_ppl(opts, num_samples=PPL_FILTER_SAMPLES,
                            epsilon=PPL_EPSILONS[0], space="w",
                            sampling="end", crop=False, batch_size=100)
  out["ppl/filter/dist"] = dist.astype(np.float32)
  out["ppl/filter/ppl"] = np.float64(value)
  params["epsilons"] = PPL_EPSILONS
  return out, params


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
  torch.manual_seed(3)  # the Linear's default init
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


def _provide_pkg_resources():
  """The official torch_utils import `pkg_resources.parse_version`, which
  setuptools >= 81 no longer ships: a stand-in comparing release numbers
  (all the official code compares)."""
  if importlib.util.find_spec("pkg_resources") is not None:
    return
  module = types.ModuleType("pkg_resources")
  module.parse_version = lambda text: tuple(
      int(part) for part in re.findall(r"\d+", text)[:3])
  sys.modules["pkg_resources"] = module


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--official", required=True)
  parser.add_argument("--pytorch_fid", required=True)
  parser.add_argument("--shared_official",
                      default=str(HERE.parents[2] / "shared" / "official"))
  args = parser.parse_args()
  # torchvision's compiled operators may not match the installed torch;
  # only its Python model definitions are used here.
  sys.modules.setdefault("torchvision._meta_registrations",
                         types.ModuleType("torchvision._meta_registrations"))
  _provide_pkg_resources()
  sys.path.insert(0, args.pytorch_fid)
  sys.path.insert(0, args.official)
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  from pytorch_fid import inception as fid_module  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(2)
  arrays, keys = inception_cases(torch, fid_module)
  arrays.update(vgg16_cases(torch, torchvision))
  ppl_arrays, ppl_params = ppl_cases(torch, torchvision, args.shared_official)
  arrays.update(ppl_arrays)
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
      "vgg16": VGG16_HEAD,
      "ppl": ppl_params,
  }, indent=1) + "\n")


if __name__ == "__main__":
  main()
