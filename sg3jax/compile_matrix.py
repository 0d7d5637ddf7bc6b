"""filtered_lrelu calls compiled for real TPU and GPU targets (`sg3jax.aot`).

A case is a JSON-able dict naming one program: a filtered_lrelu call
(`x_shape`, `dtype`, the taps `fu`/`fd`, `up`, `down`, `padding`, `gain`,
`slope`, `clamp`; `impl`, default "auto"), a `mode` and a `target`:

  forward       y = filtered_lrelu(x, b)
  gradient      y and the pullback (dx, db) of a cotangent dy: the forward
                and the backward kernel
  second_order  d/d(x, dy) |dx(x, dy)|^2: the gradient of a norm of the
                gradient, as the path-length penalty differentiates it
                (the backward kernel, then the XLA path's JVP)

`official_layer_cases` lists every distinct layer of the official StyleGAN3
generators, `random_cases` valid calls drawn with a seed. `compile_case`
compiles one case with impl="auto" and adds whether the kernel can serve
the call (`fused.check_supported`), so that callers can check that `auto`
took the kernel exactly where it is supported. Run by `run_isolated` as a
worker: `python -m sg3jax.compile_matrix --worker MAX_BYTES`.
"""

import functools
import math
import queue
import threading
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import aot

MODES = ("forward", "gradient", "second_order")
WORKER_MODULE = "sg3jax.compile_matrix"


def official_generator(cfg: str, resolution: int, *, mixed_precision=True,
                       impl: str = "auto"):
  """The official table's generator of `cfg` at `resolution` (mixed
  precision: bf16 in its num_fp16_res highest resolutions)."""
  from sg3jax import convert  # pylint: disable=g-import-not-at-top
  from sg3jax.training import config as config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.base_config(cfg)
  kwargs = config_lib.generator_kwargs(c, resolution=resolution, channels=3,
                                       label_dim=0)
  return convert.generator_from_kwargs(
      kwargs, filtered_lrelu_impl=impl, mixed_precision=mixed_precision)


def layer_calls(cfg: str, resolution: int, batch: int
                ) -> list[tuple[str, jax.ShapeDtypeStruct, dict]]:
  """(layer name, input, `ops.filtered_lrelu` args but x and b) of the
  official generator's filtering layers, the first of each distinct call."""
  from sg3jax import networks  # pylint: disable=g-import-not-at-top
  G = official_generator(cfg, resolution)
  calls = networks.synthesis_network(G).filtered_lrelu_calls(batch)
  distinct = {}
  for name, (x, args) in calls.items():
    key = (x.shape, x.dtype.name, args["fu"].shape, args["fd"].shape,
           args["up"], args["down"], tuple(args["padding"]))
    distinct.setdefault(key, (name, x, args))
  return list(distinct.values())


def call_case(x_shape, dtype: str, args: dict, **extra) -> dict:
  """The case of one filtered_lrelu call (`args`: its keyword arguments
  but x and b)."""
  clamp = args.get("clamp")
  return dict(
      x_shape=[int(n) for n in x_shape], dtype=dtype,
      fu=np.asarray(args["fu"], np.float32).tolist(),
      fd=np.asarray(args["fd"], np.float32).tolist(),
      up=int(args["up"]), down=int(args["down"]),
      padding=[int(p) for p in args["padding"]],
      gain=float(args.get("gain", math.sqrt(2))),
      slope=float(args.get("slope", 0.2)),
      clamp=None if clamp is None else float(clamp), **extra)


def official_layer_cases(cfg: str, resolution: int, *, batch: int,
                         precisions=("float32", "mixed")) -> list[dict]:
  """A case (no mode or target yet) per distinct layer and precision:
  "float32" runs every layer in float32, "mixed" as the official config
  (bfloat16 in the highest resolutions); the float32 layers of "mixed"
  repeat "float32" and are left out."""
  cases = []
  for name, x, args in layer_calls(cfg, resolution, batch):
    for precision in precisions:
      dtype = "float32" if precision == "float32" else x.dtype.name
      if precision == "mixed" and dtype == "float32":
        continue
      cases.append(call_case(
          x.shape, dtype, args, layer=f"{cfg[-1].upper()}{resolution}/{name}",
          precision=precision))
  return cases


def _lowpass_taps(rng: np.random.Generator, taps: int, two_d: bool):
  """Random positive taps summing to 1, `[K]` or `[K, K]`."""
  f = rng.uniform(0.1, 1.0, size=(taps, taps) if two_d else (taps,))
  return f / f.sum()


def random_cases(seed: int, count: int, *,
                 max_mid_elements: int = 2 ** 27) -> list[dict]:
  """`count` valid calls drawn with `seed`: sizes 8-300, channels 3-1024,
  up and down 1, 2 or 4, 1-12 taps, separable or 2-D filters, batch 1-8,
  float32 or bfloat16. Valid: the padded, upsampled image is at least the
  filters' size and the upsampled signal has at most `max_mid_elements`
  elements (batch x channels x rows x columns)."""
  rng = np.random.default_rng(seed)
  cases = []
  while len(cases) < count:
    size = int(rng.integers(8, 301))
    channels = int(rng.integers(3, 1025))
    batch = int(rng.integers(1, 9))
    up, down = (int(rng.choice([1, 2, 4])) for _ in range(2))
    fu_taps, fd_taps = (int(rng.integers(1, 13)) for _ in range(2))
    two_d = bool(rng.integers(0, 2))
    pad = [int(rng.integers(0, 2 * max(fu_taps, fd_taps) + 1))
           for _ in range(4)]
    mid = [size * up + pad[a] + pad[a + 1] - fu_taps + 1 for a in (0, 2)]
    if min(mid) < fd_taps or batch * channels * mid[0] * mid[1] > (
        max_mid_elements):
      continue
    args = dict(fu=_lowpass_taps(rng, fu_taps, two_d),
                fd=_lowpass_taps(rng, fd_taps, two_d), up=up, down=down,
                padding=pad, gain=math.sqrt(2), slope=0.2,
                clamp=float(rng.choice([256.0, 0.0])) or None)
    dtype = str(rng.choice(["float32", "bfloat16"]))
    cases.append(call_case((batch, size, size, channels), dtype, args,
                           layer=f"random/{len(cases)}"))
  return cases


def with_modes(cases: list[dict], targets, modes) -> list[dict]:
  """Every case for every target and mode."""
  return [dict(case, target=t, mode=m) for case in cases for t in targets
          for m in modes]


def _filtered_lrelu(case: dict):
  """filtered_lrelu(x, b) of the case (its "impl", default "auto")."""
  from sg3jax import ops  # pylint: disable=g-import-not-at-top
  return functools.partial(
      ops.filtered_lrelu, fu=np.asarray(case["fu"], np.float32),
      fd=np.asarray(case["fd"], np.float32), up=case["up"],
      down=case["down"], padding=case["padding"], gain=case["gain"],
      slope=case["slope"], clamp=case["clamp"],
      impl=case.get("impl", "auto"))


def program(case: dict):
  """(function, abstract arguments placed on the case's target)."""
  op = _filtered_lrelu(case)
  sharding = aot.single_device(case["target"])
  dtype = jnp.dtype(case["dtype"])
  x = jax.ShapeDtypeStruct(tuple(case["x_shape"]), dtype, sharding=sharding)
  b = jax.ShapeDtypeStruct(x.shape[-1:], dtype, sharding=sharding)
  y = jax.eval_shape(lambda x, b: op(x, b=b), x, b)
  dy = jax.ShapeDtypeStruct(y.shape, y.dtype, sharding=sharding)
  if case["mode"] == "forward":
    return (lambda x, b: op(x, b=b)), (x, b)
  if case["mode"] == "gradient":
    def gradient(x, b, dy):
      y, pullback = jax.vjp(lambda x, b: op(x, b=b), x, b)
      return (y,) + pullback(dy)
    return gradient, (x, b, dy)
  if case["mode"] == "second_order":
    def second_order(x, b, dy):
      def squared_norm(x, dy):
        _, pullback = jax.vjp(lambda x: op(x, b=b), x)
        dx, = pullback(dy)
        return jnp.sum(jnp.square(dx.astype(jnp.float32)))
      return jax.grad(squared_norm, argnums=(0, 1))(x, dy)
    return second_order, (x, b, dy)
  raise ValueError(f"mode: expected one of {MODES}, got {case['mode']!r}")


def kernel_supported(case: dict) -> bool | str:
  """True when impl="auto" takes the target's kernel for the call, else
  why not (`ops.kernel_refusal`)."""
  from sg3jax import ops  # pylint: disable=g-import-not-at-top
  refusal = ops.kernel_refusal(
      case["x_shape"], jnp.dtype(case["dtype"]), np.shape(case["fu"]),
      np.shape(case["fd"]), platform=aot.target(case["target"]).platform,
      up=case["up"], down=case["down"], padding=tuple(case["padding"]),
      gain=case["gain"], slope=case["slope"], clamp=case["clamp"],
      flip_filter=False)
  return True if refusal is None else refusal


def kernel_spill_bytes(result: dict) -> int | None:
  """The most register spill bytes of any filtered_lrelu kernel entry in a
  GPU compile result (`aot.Compiled.spill_bytes`); None for TPU results
  and programs without the kernel."""
  spills = [n for entry, n in (result.get("spill_bytes") or {}).items()
            if entry.startswith("filtered_lrelu")]
  return max(spills) if spills else None


def compile_case(case: dict) -> dict:
  """The compile result of one case (`aot.Compiled` fields, total_bytes,
  and `supported`: True or why the kernel cannot serve the call)."""
  fn, args = program(case)
  result = aot.as_dict(aot.compile_for(case["target"], fn, *args,
                                      spills=True))
  result["supported"] = kernel_supported(case)
  return result


def compile_cases(cases: list[dict], *, timeout_s: float = 600,
                  max_bytes: int = 14 * aot.GIB, workers: int = 1
                  ) -> Iterator[dict]:
  """`compile_case` of each case in isolated worker processes, `workers`
  at a time (cases dealt round-robin); yields results as they come."""
  if workers <= 1:
    yield from aot.run_isolated(WORKER_MODULE, cases, timeout_s=timeout_s,
                                max_bytes=max_bytes)
    return
  results = queue.Queue()
  done = object()

  def run(shard):
    try:
      for result in aot.run_isolated(WORKER_MODULE, shard,
                                     timeout_s=timeout_s,
                                     max_bytes=max_bytes):
        results.put(result)
    except Exception as e:  # pylint: disable=broad-except
      results.put(e)
    finally:
      results.put(done)

  threads = [threading.Thread(target=run, args=(cases[i::workers],),
                              daemon=True) for i in range(workers)]
  for thread in threads:
    thread.start()
  finished = 0
  while finished < len(threads):
    item = results.get()
    if item is done:
      finished += 1
    elif isinstance(item, Exception):
      raise item
    else:
      yield item


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  if len(sys.argv) != 3 or sys.argv[1] != "--worker":
    raise SystemExit("usage: python -m sg3jax.compile_matrix --worker "
                     "MAX_BYTES (experiments/compile_check.py runs the "
                     "matrix)")
  aot.serve(compile_case, int(sys.argv[2]))
