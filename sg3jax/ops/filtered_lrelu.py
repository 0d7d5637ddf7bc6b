"""Filtered leaky ReLU: the alias-suppressing nonlinearity (paper Sec. 3.2).

Two implementations with one semantics:
* `impl="xla"`: polyphase `upfirdn2d` up, the activation, strided
  `upfirdn2d` down, under a custom VJP that keeps only an int8 code of the
  activation's branch per upsampled sample (as the official CUDA op keeps
  bit-packed signs), not the float intermediates.
* `impl="pallas"`: the fused kernel in `kernels/filtered_lrelu` (Mosaic on
  TPU, Triton on NVIDIA GPUs; interpreted on a CPU), imported only when used.
`impl="auto"` lowers, per platform (`jax.lax.platform_dependent`), the
kernel where it can serve this shape and dtype, and the XLA path everywhere
else: on CPU, for traced filters (the kernel has no filter gradient), for
float16, and where a tile would not fit on chip. It never picks a kernel
that cannot lower. Kernel branches are traced for the platform this process
runs on; `kernel_platforms(("cuda", "tpu"))` asks for others too, so that
one exported program carries each platform's choice (a fresh `jax.jit` must
trace under it).
"""

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Iterator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax.ops import _validate
from sg3jax.ops.upfirdn2d import apply_plan
from sg3jax.ops.upfirdn2d import apply_plan_autodiff
from sg3jax.ops.upfirdn2d import UpfirdnPlan
from sg3jax.ops.upfirdn2d import make_plan
from sg3jax.ops.upfirdn2d import parse_padding

# Per upsampled sample, which branch of clamp(lrelu(v) * gain) it took.
_CLAMPED, _NEGATIVE, _POSITIVE = 0, 1, 2

IMPLS = ("auto", "xla", "pallas")


def filtered_lrelu(
    x: jax.typing.ArrayLike,
    fu: jax.typing.ArrayLike | None = None,
    fd: jax.typing.ArrayLike | None = None,
    b: jax.typing.ArrayLike | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    gain: float = np.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = "auto",
) -> jax.Array:
  """Bias, upsample, leaky ReLU, clamp, low-pass and downsample, fused.

  For each channel (official `filtered_lrelu` semantics):
    1. add the bias `b`;
    2. upsample by inserting `up - 1` zeros after each pixel;
    3. pad with zeros (`padding`; negative values crop);
    4. convolve with `fu` (valid part only), times up**2;
    5. multiply by `gain`, apply leaky ReLU with `slope` (their order does
       not matter: gain > 0);
    6. clamp to [-clamp, clamp] if `clamp` is given;
    7. convolve with `fd` (valid part only);
    8. keep every `down`-th pixel.

  Args:
    x: activations `[N, H, W, C]`, floating point.
    fu: upsampling taps `[K]` (separable), `[Kh, Kw]`, or None (identity).
    fd: downsampling taps, as `fu`.
    b: bias `[C]` or None.
    up: integer upsampling factor >= 1.
    down: integer downsampling factor >= 1.
    padding: int, [x, y] or [x0, x1, y0, y1], w.r.t. the upsampled image.
    gain: scale after the up-filter (sqrt(2) keeps lrelu's variance).
    slope: leaky ReLU negative slope, >= 0.
    clamp: maximum output magnitude of the activation, or None.
    flip_filter: False = convolution, True = correlation.
    impl: "auto", "xla" or "pallas" (on CPU, Pallas runs interpreted; an
      explicit "pallas" that cannot serve the call raises a ValueError
      naming the shape and the on-chip budget it exceeds). Gradients
      w.r.t. `fu`/`fd` need "xla" ("auto" uses it for traced filters).

  Returns:
    `[N, out_h, out_w, C]` with out_w = (W * up + px0 + px1 - (fu_w - 1) -
    (fd_w - 1) + (down - 1)) // down, and out_h likewise; dtype of `x`.
  """
  # The kernel has no filter gradient: filters computed by the caller's
  # trace (e.g. designed from a traced cutoff) keep "auto" on XLA.
  filters_traced = any(isinstance(f, jax.core.Tracer) for f in (fu, fd))
  x = _validate.image(x)
  # Taps in at least float32 (the kernels compute in float32 from them);
  # the XLA path rounds them to x's dtype.
  taps_dtype = jnp.promote_types(x.dtype, jnp.float32)
  fu = _validate.taps("fu", fu, taps_dtype)
  fd = _validate.taps("fd", fd, taps_dtype)
  b = _validate.bias(b, x.shape[-1], x.dtype)
  for name, factor in (("up", up), ("down", down)):
    if not isinstance(factor, (int, np.integer)) or factor < 1:
      raise ValueError(f"{name}: expected an int >= 1, got {factor!r}")
  padding = parse_padding(padding)
  gain = _validate.positive_float("gain", gain, allow_zero=False)
  slope = _validate.positive_float("slope", slope, allow_zero=True)
  if clamp is not None:
    clamp = _validate.positive_float("clamp", clamp, allow_zero=True)
  if impl not in IMPLS:
    raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
  kwargs = dict(up=int(up), down=int(down), padding=padding, gain=gain,
                slope=slope, clamp=clamp, flip_filter=bool(flip_filter))
  if impl == "xla" or (impl == "auto" and (
      filters_traced or not _kernel_platforms())):
    return _xla(x, fu, fd, b, **kwargs)
  from kernels import filtered_lrelu as fused  # pylint: disable=g-import-not-at-top
  jvp = functools.partial(_xla_jvp, _plans(x.shape, fu.shape, fd.shape,
                                           **kwargs))

  def kernel(backend, interpret=False):
    return functools.partial(fused.filtered_lrelu_pallas, backend=backend,
                             interpret=interpret, jvp=jvp, **kwargs)
  if impl == "pallas":
    device = jax.default_backend()
    if device in ("gpu", "tpu"):
      return kernel(device)(x, fu, fd, b)
    return kernel("tpu", interpret=True)(x, fu, fd, b)
  branches = {
      platform: kernel(_KERNEL_BACKENDS[platform])
      for platform in _kernel_platforms()
      if kernel_refusal(x.shape, x.dtype, fu.shape, fd.shape,
                        platform=platform, **kwargs) is None}
  if not branches:
    return _xla(x, fu, fd, b, **kwargs)
  return jax.lax.platform_dependent(
      x, fu, fd, b, default=functools.partial(_xla, **kwargs), **branches)


def kernel_refusal(x_shape, dtype, fu_shape, fd_shape, *, platform: str,
                   up: int, down: int, padding, gain: float, slope: float,
                   clamp: float | None, flip_filter: bool) -> str | None:
  """Why impl="auto" lowers the XLA path, not the fused kernel, for this
  call (with constant filters) on lowering platform `platform` ("cuda" or
  "tpu"); None when it takes the kernel. The compile tests hold this
  against the real compilers (`sg3jax.compile_matrix`)."""
  if jnp.dtype(dtype) not in (jnp.float32, jnp.bfloat16):
    return f"dtype {jnp.dtype(dtype).name}: the kernels take float32 or " \
           "bfloat16"
  if up == 1 and down == 1 and np.prod(fu_shape) == 1 and np.prod(
      fd_shape) == 1:
    return "nothing to fuse: up = down = 1 and one-tap filters"
  from kernels import filtered_lrelu as fused  # pylint: disable=g-import-not-at-top
  cfg = fused.make_config(x_shape, fu_shape, fd_shape, up=up, down=down,
                          padding=padding, gain=gain, slope=slope,
                          clamp=clamp, flip_filter=flip_filter)
  try:
    fused.check_supported(cfg, dtype, _KERNEL_BACKENDS[platform])
  except fused.Unsupported as e:
    return str(e)
  return None


# jax.lax.platform_dependent platform -> kernel backend.
_KERNEL_BACKENDS = {"cuda": "gpu", "tpu": "tpu"}
_PLATFORMS_OVERRIDE = contextvars.ContextVar("kernel_platforms", default=None)


@contextlib.contextmanager
def kernel_platforms(platforms: Sequence[str]) -> Iterator[None]:
  """Within this context, impl="auto" traces kernel branches for these
  lowering platforms ("cuda", "tpu"), whatever this process runs on: for
  `jax.export` to other platforms, or several at once."""
  unknown = set(platforms) - set(_KERNEL_BACKENDS)
  if unknown:
    raise ValueError(f"platforms: expected some of {tuple(_KERNEL_BACKENDS)},"
                     f" got {tuple(platforms)}")
  token = _PLATFORMS_OVERRIDE.set(tuple(platforms))
  try:
    yield
  finally:
    _PLATFORMS_OVERRIDE.reset(token)


def _kernel_platforms() -> tuple[str, ...]:
  """The kernel_platforms override, else this process's platform."""
  override = _PLATFORMS_OVERRIDE.get()
  if override is not None:
    return override
  return {"gpu": ("cuda",), "tpu": ("tpu",)}.get(jax.default_backend(), ())


@dataclasses.dataclass(frozen=True)
class _Plans:
  """The XLA path's static configuration: up and down stages, activation."""
  up: UpfirdnPlan
  down: UpfirdnPlan
  activation: "_Activation"


def _plans(x_shape, fu_shape, fd_shape, *, up, down, padding, gain, slope,
           clamp, flip_filter) -> _Plans:
  up_plan = make_plan(x_shape, fu_shape, (up, up), (1, 1), padding,
                      bool(flip_filter), float(up * up))
  mid_shape = (x_shape[0],) + up_plan.out_hw + (x_shape[3],)
  down_plan = make_plan(mid_shape, fd_shape, (1, 1), (down, down),
                        (0, 0, 0, 0), bool(flip_filter), 1.0)
  return _Plans(up_plan, down_plan, _Activation(gain, slope, clamp))


def _xla(x, fu, fd, b, **kwargs) -> jax.Array:
  """The XLA path of validated arguments (computed in x's dtype)."""
  fu, fd = fu.astype(x.dtype), fd.astype(x.dtype)
  p = _plans(x.shape, fu.shape, fd.shape, **kwargs)
  return _filtered_lrelu_xla(p.up, p.down, p.activation, x, fu, fd, b)


# The second order's JVP runs channel group by channel group, each group's
# upsampled signal at most this many bytes: the op is per channel, and the
# whole layer at once needed up to 89 GB of HBM (StyleGAN3-R 256², 276²
# layers, batch 4) on TPU.
JVP_GROUP_BYTES = 256 * 2 ** 20


def _xla_jvp(p: _Plans, x, fu, fd, b, tangent_x, tangent_b) -> jax.Array:
  """The op's JVP at (x, b) along (tangent_x, tangent_b):
  down(act'(v) * up(tangent_x + tangent_b)) with v = up(x + b). The
  kernels use it for second order; plain autodiff stages (no custom VJP),
  so that reverse mode can transpose it.

  x, tangent_x: [N, H, W, C]; b, tangent_b: [C]. Channels run in `groups`
  (`lax.map`), the fewest whose upsampled signal [N, H', W', C / groups]
  fits `JVP_GROUP_BYTES`.
  """
  fu, fd = fu.astype(x.dtype), fd.astype(x.dtype)

  def jvp(x, b, tangent_x, tangent_b):
    _, code = p.activation(apply_plan_autodiff(p.up, x + b, fu))
    u = apply_plan_autodiff(p.up, tangent_x + tangent_b, fu)
    return apply_plan_autodiff(
        p.down, u * p.activation.derivative(code, u.dtype), fd)

  mid = jax.eval_shape(lambda x: apply_plan_autodiff(p.up, x, fu), x)
  groups = _channel_groups(x.shape[-1], mid.size * 4, JVP_GROUP_BYTES)
  if groups == 1:
    return jvp(x, b, tangent_x, tangent_b)

  def split(a):  # [..., C] -> [groups, ..., C / groups]
    return jnp.moveaxis(a.reshape(*a.shape[:-1], groups, -1), -2, 0)
  y = jax.lax.map(lambda a: jvp(*a), tuple(
      map(split, (x, b, tangent_x, tangent_b))))
  return jnp.moveaxis(y, 0, -2).reshape(*y.shape[1:-1], -1)


def _channel_groups(channels: int, mid_bytes: int, group_bytes: int) -> int:
  """The fewest groups (a divisor of `channels`) that bring `mid_bytes`
  (float32, all channels) to at most `group_bytes` a group; `channels`
  when even one channel is larger."""
  for groups in range(1, channels + 1):
    if channels % groups == 0 and mid_bytes <= groups * group_bytes:
      return groups
  return channels


@dataclasses.dataclass(frozen=True)
class _Activation:
  """clamp(lrelu(v, slope) * gain) and its branch code (static config)."""
  gain: float
  slope: float
  clamp: float | None

  def __call__(self, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(activation, int8 branch code), both shaped like v."""
    a = jnp.where(v > 0, v, v * self.slope) * self.gain
    code = jnp.where(v > 0, _POSITIVE, _NEGATIVE).astype(jnp.int8)
    if self.clamp is not None:
      code = jnp.where(jnp.abs(a) > self.clamp, _CLAMPED, code).astype(jnp.int8)
      a = jnp.clip(a, -self.clamp, self.clamp)
    return a, code

  def derivative(self, code: jax.Array, dtype) -> jax.Array:
    """d activation / d v for each branch code."""
    return jnp.where(code == _POSITIVE, self.gain,
                     jnp.where(code == _NEGATIVE, self.gain * self.slope,
                               0.0)).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _filtered_lrelu_xla(up_plan, down_plan, activation, x, fu, fd, b):
  v = apply_plan(up_plan, x + b, fu)
  a, _ = activation(v)
  return apply_plan(down_plan, a, fd)


def _filtered_lrelu_xla_fwd(up_plan, down_plan, activation, x, fu, fd, b):
  xb = x.value + b.value
  v = apply_plan(up_plan, xb, fu.value)
  a, code = activation(v)
  y = apply_plan(down_plan, a, fd.value)
  # The pre-activation input is kept only when a filter is differentiated.
  filters_perturbed = fu.perturbed or fd.perturbed
  residuals = (code, fu.value, fd.value, xb if filters_perturbed else None,
               fu.perturbed, fd.perturbed)
  return y, residuals


def _filtered_lrelu_xla_bwd(up_plan, down_plan, activation, residuals, dy):
  code, fu, fd, xb, fu_perturbed, fd_perturbed = residuals
  dy = _validate.instantiate_zeros(dy)
  da = apply_plan(down_plan.adjoint(), dy, fd)
  dv = da * activation.derivative(code, da.dtype)
  dxb = apply_plan(up_plan.adjoint(), dv, fu)
  dfu = dfd = None
  if fu_perturbed:
    _, pullback = jax.vjp(lambda f: apply_plan_autodiff(up_plan, xb, f), fu)
    (dfu,) = pullback(dv)
  if fd_perturbed:
    a, _ = activation(apply_plan(up_plan, xb, fu))
    _, pullback = jax.vjp(lambda f: apply_plan_autodiff(down_plan, a, f), fd)
    (dfd,) = pullback(dy)
  return dxb, dfu, dfd, jnp.sum(dxb, axis=(0, 1, 2))


_filtered_lrelu_xla.defvjp(_filtered_lrelu_xla_fwd, _filtered_lrelu_xla_bwd,
                           symbolic_zeros=True)
