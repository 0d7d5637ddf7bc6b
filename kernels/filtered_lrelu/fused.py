"""The public fused filtered_lrelu: validation, backend choice, custom VJP.

The VJP keeps x (the op's input, alive anyway) rather than an int8 code of
the activation's branch per upsampled sample: the backward kernel
recomputes the upsampled signal on chip. Reading x again moves 2-4 bytes
per input sample where writing and reading a code would move 2 bytes per
upsampled sample, 8 (up 2) or 32 (up 4) per input sample.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from kernels.filtered_lrelu import gpu
from kernels.filtered_lrelu import plan as planning
from kernels.filtered_lrelu import tpu
from kernels.filtered_lrelu.common import KernelConfig
from kernels.filtered_lrelu.common import Tiling
from kernels.filtered_lrelu.common import Unsupported

BACKENDS = {"tpu": tpu, "gpu": gpu}
# jvp(x, fu, fd, b, tangent_x, tangent_b) -> tangent_y.
JVP = Callable[..., jax.Array]
DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16))


def make_config(x_shape, fu_shape, fd_shape, *, up: int, down: int,
                padding, gain: float, slope: float, clamp: float | None,
                flip_filter: bool) -> KernelConfig:
  """The static configuration of a call, checking the arguments."""
  if len(x_shape) != 4:
    raise ValueError(f"x: expected rank 4 [N, H, W, C], got shape {x_shape}")
  for name, factor in (("up", up), ("down", down)):
    if not isinstance(factor, (int, np.integer)) or factor < 1:
      raise ValueError(f"{name}: expected an int >= 1, got {factor!r}")
  if len(padding) != 4:
    raise ValueError(f"padding: expected (x0, x1, y0, y1), got {padding!r}")
  geometry = planning.OpGeometry(
      tuple(x_shape[1:3]), int(x_shape[3]), int(up), int(down),
      tuple(fu_shape), tuple(fd_shape), tuple(int(p) for p in padding))
  return KernelConfig(geometry, float(gain), float(slope),
                      None if clamp is None else float(clamp),
                      bool(flip_filter))


def check_supported(cfg: KernelConfig, dtype, backend: str,
                    tiling: Tiling = Tiling()) -> None:
  """Raises Unsupported (a ValueError) naming the shape and the limit it
  exceeds when `backend`'s kernel cannot serve `cfg` in `dtype`."""
  if backend not in BACKENDS:
    raise ValueError(f"backend: expected one of {tuple(BACKENDS)}, got "
                     f"{backend!r}")
  if jnp.dtype(dtype) not in DTYPES:
    raise Unsupported(f"filtered_lrelu {backend} kernel: dtype "
                      f"{jnp.dtype(dtype).name} is not float32 or bfloat16")
  module = BACKENDS[backend]
  module.plan_tiles(cfg, jnp.dtype(dtype), backward=False, tiling=tiling)
  module.plan_tiles(cfg, jnp.dtype(dtype), backward=True, tiling=tiling)


def filtered_lrelu_pallas(
    x: jax.Array,
    fu: jax.Array,
    fd: jax.Array,
    b: jax.Array,
    *,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
    backend: str,
    interpret=False,
    tiling: Tiling = Tiling(),
    jvp: JVP | None = None,
) -> jax.Array:
  """Fused filtered leaky ReLU (`sg3jax.ops.filtered_lrelu` semantics).

  Args:
    x: `[N, H, W, C]`, float32 or bfloat16 (computed in float32 inside).
    fu, fd: up/down taps `[K]` (separable) or `[Kh, Kw]`; `ones([1, 1])`
      for identity.
    b: bias `[C]`.
    up, down: integer factors >= 1.
    padding: (x0, x1, y0, y1) w.r.t. the upsampled image.
    gain, slope, clamp, flip_filter: as `sg3jax.ops.filtered_lrelu`.
    backend: "tpu" (Mosaic) or "gpu" (Triton): which kernel to lower.
    interpret: False to compile; True (or `pltpu.InterpretParams()` for the
      TPU kernel) to run the Pallas interpreter, e.g. on a CPU.
    tiling: limits on the tiles (tests and tuning); default: the kernel's
      own choice.
    jvp: `jvp(x, fu, fd, b, tangent_x, tangent_b)`, the op's JVP (any
      differentiable implementation, e.g. the XLA path's). It makes the
      kernel's VJP itself differentiable (second order, as the path-length
      penalty needs): the VJP is linear in the cotangent, its transpose is
      the JVP, and its derivative w.r.t. x is zero (the activation's
      derivative is piecewise constant). None: second order raises.

  Returns:
    `[N, out_h, out_w, C]` in the dtype of x; differentiable w.r.t. x and b.

  Raises:
    ValueError on bad arguments; Unsupported (a ValueError) when the kernel
    cannot serve this shape or dtype (naming the budget it exceeds).
  """
  x, fu, fd, b = (jnp.asarray(a) for a in (x, fu, fd, b))
  if x.ndim == 4 and not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x: expected a floating dtype, got {x.dtype}")
  for name, f in (("fu", fu), ("fd", fd)):
    if f.ndim not in (1, 2):
      raise ValueError(f"{name}: expected taps of shape [K] or [Kh, Kw], got "
                       f"shape {f.shape}")
  cfg = make_config(x.shape, fu.shape, fd.shape, up=up, down=down,
                    padding=padding, gain=gain, slope=slope, clamp=clamp,
                    flip_filter=flip_filter)
  if b.shape != (x.shape[-1],):
    raise ValueError(f"b: expected shape [{x.shape[-1]}], got {b.shape}")
  check_supported(cfg, x.dtype, backend, tiling)
  return _fused((cfg, backend, interpret, tiling), jvp, x, fu, fd, b)


# Jitted with the static configuration, so that the kernels of a call
# traced several times (primal and VJP rules, repeated layers) are traced
# once.
# `static` = (KernelConfig, backend, interpret, Tiling).
@functools.partial(jax.jit, static_argnums=0)
def _forward(static, x, fu, fd, b):
  cfg, backend, interpret, tiling = static
  taps_up, taps_down = cfg.correlation_taps(fu, fd)
  return BACKENDS[backend].forward(cfg, x, taps_up, taps_down, b,
                                   tiling=tiling, interpret=interpret)


@functools.partial(jax.jit, static_argnums=0)
def _backward(static, x, dy, fu, fd, b):
  cfg, backend, interpret, tiling = static
  taps_up, taps_down = cfg.correlation_taps(fu, fd)
  dx = BACKENDS[backend].backward(cfg, x, dy, taps_up, taps_down, b,
                                  tiling=tiling, interpret=interpret)
  db = jnp.sum(dx, axis=(0, 1, 2), dtype=jnp.float32).astype(b.dtype)
  return dx, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fused(static, jvp, x, fu, fd, b):
  return _forward_op(static, jvp, x, fu, fd, b)


def _fused_fwd(static, jvp, x, fu, fd, b):
  if fu.perturbed or fd.perturbed:
    raise ValueError("filtered_lrelu impl='pallas' cannot differentiate "
                     "w.r.t. fu/fd; use impl='xla'")
  y = _forward_op(static, jvp, x.value, fu.value, fd.value, b.value)
  return y, (x.value, fu.value, fd.value, b.value)


def _fused_bwd(static, jvp, residuals, dy):
  x, fu, fd, b = residuals
  if isinstance(dy, jax.custom_derivatives.SymbolicZero):
    dy = jnp.zeros(dy.shape, dy.dtype)
  dx, db = _vjp(static, jvp, x, fu, fd, b, dy)
  return dx, None, None, db


_fused.defvjp(_fused_fwd, _fused_bwd, symbolic_zeros=True)


def _require(jvp: JVP | None) -> JVP:
  if jvp is None:
    raise ValueError("filtered_lrelu impl='pallas': differentiating the "
                     "gradient needs a jvp (sg3jax.ops.filtered_lrelu passes "
                     "the XLA path's)")
  return jvp


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _forward_op(static, jvp, x, fu, fd, b):
  """The forward kernel; under an outer derivative (second order, where
  the VJP's forward pass is itself differentiated) its tangent is `jvp`."""
  del jvp
  return _forward(static, x, fu, fd, b)


@_forward_op.defjvp
def _forward_op_jvp(static, jvp, primals, tangents):
  x, fu, fd, b = primals
  tangent_x, _, _, tangent_b = tangents
  y = _forward(static, x, fu, fd, b)
  return y, _require(jvp)(x, fu, fd, b, tangent_x, tangent_b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _vjp(static, jvp, x, fu, fd, b, dy):
  """(dx, db) of the cotangent dy, differentiable through `jvp`."""
  del jvp
  return _backward(static, x, dy, fu, fd, b)


def _vjp_fwd(static, jvp, x, fu, fd, b, dy):
  del jvp
  return _backward(static, x, dy, fu, fd, b), (x, fu, fd, b)


def _vjp_bwd(static, jvp, residuals, cotangents):
  x, fu, fd, b = residuals
  d_dx, d_db = cotangents
  d_dy = _require(jvp)(x, fu, fd, b, d_dx.astype(x.dtype),
                       d_db.astype(b.dtype))
  return jnp.zeros_like(x), None, None, jnp.zeros_like(b), d_dy


_vjp.defvjp(_vjp_fwd, _vjp_bwd)
