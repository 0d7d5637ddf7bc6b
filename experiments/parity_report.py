"""Prints max |sg3jax - official| per tensor for the official fixtures.

    python experiments/parity_report.py [--official ../shared/official]

Covers the operators (ops.npz, both filtered_lrelu implementations), the
generators (g_t64, g_t64_cond: ws, every layer, images, EMA buffers) and the
discriminator logits (loss_t64). Errors are absolute, with the tensor's
max |value| beside them.
"""

import argparse
import json
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import convert
from sg3jax import filters
from sg3jax import ops


def _nhwc(x):
  return x.transpose(0, 2, 3, 1)


def _row(name, actual, expected):
  expected = np.asarray(expected)
  err = float(np.abs(np.asarray(actual, np.float64) - expected).max())
  print(f"{name:48s} max abs err {err:9.2e}   max |ref| {np.abs(expected).max():9.3g}")


def report_ops(arrays, cases):
  for name, c in cases.items():
    if name.startswith("design") and not c["identity"]:
      f = filters.design_lowpass_filter(c["numtaps"], c["cutoff"], c["width"],
                                        c["fs"], c["radial"])
      _row(f"{name}/f", f, arrays[f"{name}/f"])
    elif name.startswith("upfirdn"):
      op = lambda x, c=c, name=name: ops.upfirdn2d(
          x, arrays[f"{name}/f"], up=c["up"], down=c["down"],
          padding=c["padding"], flip_filter=c["flip_filter"], gain=c["gain"])
      y, pullback = jax.vjp(op, jnp.asarray(_nhwc(arrays[f"{name}/x"])))
      _row(f"{name}/y", y, _nhwc(arrays[f"{name}/y"]))
      _row(f"{name}/dx", pullback(_nhwc(arrays[f"{name}/dy"]))[0],
           _nhwc(arrays[f"{name}/dx"]))
    elif name.startswith("flrelu"):
      for impl in ("xla", "pallas"):
        op = lambda x, b, c=c, name=name, impl=impl: ops.filtered_lrelu(
            x, arrays.get(f"{name}/fu"), arrays.get(f"{name}/fd"), b,
            up=c["up"], down=c["down"], padding=c["padding"], gain=c["gain"],
            slope=c["slope"], clamp=c["clamp"], flip_filter=c["flip_filter"],
            impl=impl)
        y, pullback = jax.vjp(op, jnp.asarray(_nhwc(arrays[f"{name}/x"])),
                              jnp.asarray(arrays[f"{name}/b"]))
        dx, db = pullback(jnp.asarray(_nhwc(arrays[f"{name}/dy"])))
        _row(f"{name}/y [{impl}]", y, _nhwc(arrays[f"{name}/y"]))
        _row(f"{name}/dx [{impl}]", dx, _nhwc(arrays[f"{name}/dx"]))
        _row(f"{name}/db [{impl}]", db, arrays[f"{name}/db"])
    elif name.startswith("modconv"):
      y = ops.modulated_conv2d(
          _nhwc(arrays[f"{name}/x"]), arrays[f"{name}/w"].transpose(2, 3, 1, 0),
          arrays[f"{name}/s"], demodulate=c["demodulate"],
          padding=c["padding"], input_gain=c["input_gain"])
      _row(f"{name}/y", y, _nhwc(arrays[f"{name}/y"]))


def report_generator(fixture, arrays, cases):
  state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
  module, variables = convert.generator_from_state_dict(
      state, cases["state"]["init_kwargs"], filtered_lrelu_impl="xla")
  c = lambda case: None if arrays[f"{case}/c"].shape[1] == 0 else arrays[
      f"{case}/c"]
  for case in ("psi1.0", "psi0.5", "psi0.7_cutoff4"):
    ws = module.apply(variables, arrays[f"{case}/z"], c(case),
                      truncation_psi=cases[case]["truncation_psi"],
                      truncation_cutoff=cases[case]["truncation_cutoff"],
                      method=module.map)
    _row(f"{fixture}/{case}/ws", ws, arrays[f"{case}/ws"])
    if f"{case}/img" in arrays:
      img, state_out = jax.jit(lambda v, ws: module.apply(
          v, ws, method=module.synthesize, capture_intermediates=True))(
              variables, ws)
      _row(f"{fixture}/{case}/img", img, _nhwc(arrays[f"{case}/img"]))
      if case == "psi1.0":
        layers = state_out["intermediates"]["synthesis"]
        for name in ["input"] + cases["state"]["layer_names"]:
          _row(f"{fixture}/{case}/layer/{name}", layers[name]["__call__"][0],
               _nhwc(arrays[f"{case}/layer/{name}"]))
  img, updates = module.apply(variables, arrays["update_emas/z"],
                              c("update_emas"), update_emas=True,
                              mutable=["stats"])
  _row(f"{fixture}/update_emas/img", img, _nhwc(arrays["update_emas/img"]))
  stats = flax.traverse_util.flatten_dict(updates["stats"], sep=".")
  worst = max(float(np.abs(np.asarray(v) - arrays[f"update_emas/after/{k}"]
                           ).max()) for k, v in stats.items())
  print(f"{fixture}/update_emas/<all {len(stats)} buffers>{'':14s} max abs "
        f"err {worst:9.2e}")


def report_discriminator(arrays, cases):
  state = {k[8:]: v for k, v in arrays.items() if k.startswith("D_state/")}
  module, variables = convert.discriminator_from_state_dict(
      state, cases["D_init_kwargs"])
  logits = module.apply(variables, _nhwc(arrays["real_img"]),
                        arrays["real_c"])
  _row("loss_t64/blur0/D_real", jax.nn.softplus(-logits[:, 0]),
       arrays["blur0/D_real"])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--official", default=str(
      pathlib.Path(__file__).resolve().parents[1].parent / "shared" /
      "official"))
  root = pathlib.Path(parser.parse_args().official)
  load = lambda name: (dict(np.load(root / f"{name}.npz")),
                       json.loads((root / f"{name}.json").read_text()))
  report_ops(*load("ops"))
  for fixture in ("g_t64", "g_t64_cond"):
    report_generator(fixture, *load(fixture))
  report_discriminator(*load("loss_t64"))


if __name__ == "__main__":
  main()
