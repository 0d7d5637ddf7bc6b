"""Writes the reference numbers in this folder by running the official code.

Not part of the test suite and not a dependency of sg3jax: it needs PyTorch
and a checkout of NVlabs/stylegan3 (the official repository), imported from
`--official`. It runs the official StyleGAN2 generator, path-length
regulariser and ADA augmentation pipeline on the CPU, float32, with fixed
seeds, and saves inputs, parameters and outputs as arrays (NCHW / OIHW, the
official layouts) under the official names. README.md lists every key.

  python tests/official_extra/make_fixtures.py --official=/path/to/stylegan3
"""

import argparse
import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

# Small StyleGAN2 generators: every architecture, conditional and not, with
# a conv_clamp small enough to clamp in one of them.
GENERATORS = {
    "skip": dict(z_dim=32, c_dim=3, w_dim=32, img_resolution=32,
                 img_channels=3, mapping_kwargs=dict(num_layers=8),
                 channel_base=512, channel_max=32, num_fp16_res=0,
                 conv_clamp=256, architecture="skip"),
    "resnet": dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
                   img_channels=3, mapping_kwargs=dict(num_layers=2),
                   channel_base=256, channel_max=16, num_fp16_res=0,
                   conv_clamp=0.5, architecture="resnet"),
    "orig": dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16,
                 img_channels=1, mapping_kwargs=dict(num_layers=2),
                 channel_base=256, channel_max=16, num_fp16_res=0,
                 conv_clamp=None, architecture="orig"),
}

# ADA pipelines (official train.py `augpipe_specs`) and strengths to record.
AUGMENT_CASES = {
    "bgc_p0.6": ("bgc", 0.6, 3),
    "bgc_p1": ("bgc", 1.0, 3),
    "bgcfnc_p0.8": ("bgcfnc", 0.8, 3),
    "bgcfnc_p0.8_gray": ("bgcfnc", 0.8, 1),
}
AUGPIPE_SPECS = {
    "bgc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1,
                xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1,
                saturation=1),
    "bgcfnc": dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1,
                   xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1,
                   saturation=1, imgfilter=1, noise=1, cutout=1),
}


class RandomRecorder:
  """Wraps torch's random functions and keeps what they return, in order."""

  def __init__(self, torch, names=("rand", "randn", "randn_like")):
    self.torch, self.names, self.draws = torch, names, []
    self.originals = {name: getattr(torch, name) for name in names}

  def __enter__(self):
    for name, fn in self.originals.items():
      def recording(*args, _fn=fn, _name=name, **kwargs):
        out = _fn(*args, **kwargs)
        self.draws.append((_name, out.detach().clone()))
        return out
      setattr(self.torch, name, recording)
    return self

  def __exit__(self, *exc):
    for name, fn in self.originals.items():
      setattr(self.torch, name, fn)


def randomize(torch, module, scale=0.1):
  """Non-trivial values for parameters/buffers that init to constants."""
  gen = torch.Generator().manual_seed(123)
  with torch.no_grad():
    for name, tensor in list(module.named_parameters()) + list(
        module.named_buffers()):
      last = name.rsplit(".", 1)[-1]
      if last in ("bias", "noise_strength", "w_avg"):
        tensor.add_(torch.randn(tensor.shape, generator=gen) * scale * (
            5 if last == "noise_strength" else 1))


def state_arrays(prefix, module):
  return {f"{prefix}/{k}": v.detach().numpy().copy()
          for k, v in module.state_dict().items()}


def generator_cases(torch, networks, name, kwargs):
  torch.manual_seed(0)
  G = networks.Generator(**kwargs).eval().requires_grad_(False)
  randomize(torch, G)
  out = state_arrays(f"{name}/state", G)
  n = 3
  z = torch.randn([n, G.z_dim])
  c = torch.nn.functional.one_hot(torch.arange(n) % max(G.c_dim, 1),
                                  max(G.c_dim, 1)).float()[:, :G.c_dim]

  ws = G.mapping(z, c, truncation_psi=1)
  block_outputs = {}
  for res in G.synthesis.block_resolutions:
    block = getattr(G.synthesis, f"b{res}")
    block.register_forward_hook(
        lambda _m, _i, o, res=res: block_outputs.update({res: o}))
  img = G.synthesis(ws, noise_mode="const")
  case = f"{name}/const"
  out.update({f"{case}/z": z, f"{case}/c": c, f"{case}/ws": ws,
              f"{case}/img": img})
  for res, (x, block_img) in block_outputs.items():
    out[f"{case}/b{res}/x"] = x
    out[f"{case}/b{res}/img"] = block_img

  case = f"{name}/none_psi0.7_cutoff3"
  ws = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=3)
  out.update({f"{case}/ws": ws,
              f"{case}/img": G.synthesis(ws, noise_mode="none")})

  case = f"{name}/update_emas"
  out[f"{case}/before/mapping.w_avg"] = G.mapping.w_avg.clone()
  G.mapping(z, c, update_emas=True)
  out[f"{case}/after/mapping.w_avg"] = G.mapping.w_avg.clone()
  return G, {k: np.asarray(v.detach().numpy() if hasattr(v, "numpy") else v,
                           np.float32) for k, v in out.items()}


def path_length_case(torch, loss_module, G):
  """Gradients of the official Greg phase (path length) with const noise."""
  G = G.train().requires_grad_(True)
  synthesis_forward = G.synthesis.forward
  G.synthesis.forward = lambda ws, **kw: synthesis_forward(
      ws, noise_mode="const", **kw)
  loss = loss_module.StyleGAN2Loss(
      device=torch.device("cpu"), G=G, D=None, pl_weight=2.0,
      pl_batch_shrink=2, pl_decay=0.01)
  loss.pl_mean.copy_(torch.tensor(0.3))
  torch.manual_seed(7)
  gen_z = torch.randn([4, G.z_dim])
  gen_c = torch.nn.functional.one_hot(torch.arange(4) % max(G.c_dim, 1),
                                      max(G.c_dim, 1)).float()[:, :G.c_dim]
  with RandomRecorder(torch, names=("randn_like",)) as recorder:
    loss.accumulate_gradients(phase="Greg", real_img=None, real_c=None,
                              gen_z=gen_z, gen_c=gen_c, gain=1.0,
                              cur_nimg=0)
  (_, pl_noise), = recorder.draws  # official pl_noise = this / sqrt(H W)
  pl_noise = pl_noise / np.sqrt(pl_noise.shape[2] * pl_noise.shape[3])
  out = {"pl/gen_z": gen_z, "pl/gen_c": gen_c, "pl/pl_noise": pl_noise,
         "pl/pl_mean_before": torch.tensor(0.3),
         "pl/pl_mean_after": loss.pl_mean.clone()}
  for name, param in G.named_parameters():
    grad = torch.zeros_like(param) if param.grad is None else param.grad
    out[f"pl/grad/{name}"] = grad
  return {k: v.detach().numpy().astype(np.float32) for k, v in out.items()}


def augment_cases(torch, augment):
  out, params = {}, {}
  torch.manual_seed(1)
  base = torch.rand([4, 3, 24, 24]) * 2 - 1
  for index, (case, (spec, p, channels)) in enumerate(AUGMENT_CASES.items()):
    pipe = augment.AugmentPipe(**AUGPIPE_SPECS[spec])
    pipe.p.copy_(torch.tensor(p))
    images = base[:, :channels].clone().requires_grad_(True)
    torch.manual_seed(100 + index)
    with RandomRecorder(torch) as recorder:
      augmented = pipe(images)
    cotangent = torch.randn(augmented.shape)
    (grad,) = torch.autograd.grad((augmented * cotangent).sum(), [images])
    out[f"{case}/images"] = images.detach()
    out[f"{case}/augmented"] = augmented.detach()
    out[f"{case}/cotangent"] = cotangent
    out[f"{case}/grad_images"] = grad
    for i, (_, draw) in enumerate(recorder.draws):
      out[f"{case}/draw{i:02d}"] = draw
    params[case] = dict(spec=spec, p=p, channels=channels,
                        draws=[fn for fn, _ in recorder.draws],
                        init_kwargs=AUGPIPE_SPECS[spec])
  return {k: v.numpy().astype(np.float32) for k, v in out.items()}, params


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--official", required=True,
                      help="a checkout of NVlabs/stylegan3")
  args = parser.parse_args()
  sys.path.insert(0, args.official)
  import torch  # pylint: disable=g-import-not-at-top
  from training import augment  # pylint: disable=g-import-not-at-top
  from training import loss as loss_module  # pylint: disable=g-import-not-at-top
  from training import networks_stylegan2  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(2)

  arrays, params = {}, {"generators": GENERATORS}
  for name, kwargs in GENERATORS.items():
    G, out = generator_cases(torch, networks_stylegan2, name, kwargs)
    arrays.update(out)
    if name == "skip":
      arrays.update(path_length_case(torch, loss_module, G))
  np.savez_compressed(HERE / "stylegan2.npz", **arrays)
  (HERE / "stylegan2.json").write_text(json.dumps(params, indent=1))

  arrays, params = augment_cases(torch, augment)
  np.savez_compressed(HERE / "augment.npz", **arrays)
  (HERE / "augment.json").write_text(json.dumps(params, indent=1))


if __name__ == "__main__":
  main()
