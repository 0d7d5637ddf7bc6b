"""Low-pass FIR filter designs behind a registry (paper Sec. 3.2, Appx. C).

Every design is written once against an array namespace `xp` (NumPy or
`jax.numpy`), so the same formula gives

* `design_lowpass_filter`: float32 NumPy taps, computed in float64. With the
  default design `"kaiser"` it returns exactly what the official
  `SynthesisLayer.design_lowpass_filter` returns (`scipy.signal.firwin` for the
  separable filter, a Kaiser-windowed jinc for the radial one).
* `design_lowpass_filter_jnp`: the same taps as a traceable `jax.Array`,
  differentiable w.r.t. `cutoff` and `width` (used to differentiate
  equivariance w.r.t. the filter design).

Designs are looked up by name, so an ablation selects one from a config:
`design_lowpass_filter(12, 2.0, 4.2, 32, design="lanczos")`. Register another
with `@register_filter_design("name")`.
"""

from collections.abc import Callable
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

# A design maps (numtaps, cutoff, width, fs, radial, xp) to taps: `[numtaps]`
# when separable, `[numtaps, numtaps]` when radial; it never sees numtaps == 1.
FilterDesign = Callable[..., Any]

_DESIGNS: dict[str, FilterDesign] = {}


def register_filter_design(name: str) -> Callable[[FilterDesign], FilterDesign]:
  """Registers `design(numtaps, cutoff, width, fs, radial, xp)` under `name`."""

  def register(design: FilterDesign) -> FilterDesign:
    if name in _DESIGNS:
      raise ValueError(f"filter design {name!r} is already registered")
    _DESIGNS[name] = design
    return design

  return register


def available_filter_designs() -> tuple[str, ...]:
  """Names accepted by `design=`, sorted."""
  return tuple(sorted(_DESIGNS))


def get_filter_design(name: str) -> FilterDesign:
  """The registered design called `name`; ValueError listing the names."""
  if name not in _DESIGNS:
    raise ValueError(
        f"design: unknown filter design {name!r}; "
        f"available: {', '.join(available_filter_designs())}")
  return _DESIGNS[name]


def design_lowpass_filter(
    numtaps: int,
    cutoff: float,
    width: float,
    fs: float,
    radial: bool = False,
    *,
    design: str = "kaiser",
) -> np.ndarray | None:
  """Designs a low-pass filter as the official SynthesisLayer does.

  Args:
    numtaps: filter length; 1 means identity.
    cutoff: cutoff frequency f_c, in the units of `fs`.
    width: transition band width (2 f_h for the paper's layers).
    fs: sampling rate s.
    radial: radially symmetric 2-D jinc filter instead of a separable sinc.
    design: registered design name (`available_filter_designs()`).

  Returns:
    None for numtaps == 1 (identity, as official), else float32 taps
    `[numtaps]` (separable) or `[numtaps, numtaps]` (radial) summing to 1.
  """
  _check_design_args(numtaps, fs)
  design_fn = get_filter_design(design)
  if numtaps == 1:
    return None
  taps = design_fn(numtaps, np.float64(cutoff), np.float64(width),
                   np.float64(fs), radial, np)
  return np.asarray(taps, dtype=np.float32)


def design_lowpass_filter_jnp(
    numtaps: int,
    cutoff: jax.typing.ArrayLike,
    width: jax.typing.ArrayLike,
    fs: float,
    radial: bool = False,
    *,
    design: str = "kaiser",
) -> jax.Array | None:
  """`design_lowpass_filter` in jax.numpy: traceable, differentiable.

  `cutoff` and `width` may be traced scalars; `numtaps`, `fs` and `radial`
  are static. Gradients exist almost everywhere (the Kaiser beta is
  piecewise in the attenuation, as in scipy).

  Returns:
    None for numtaps == 1, else taps `[numtaps]` or `[numtaps, numtaps]`
    (float32 unless x64 is enabled) summing to 1.
  """
  _check_design_args(numtaps, fs)
  design_fn = get_filter_design(design)
  if numtaps == 1:
    return None
  dtype = jnp.result_type(float)
  return design_fn(numtaps, jnp.asarray(cutoff, dtype),
                   jnp.asarray(width, dtype), float(fs), radial, jnp)


def _check_design_args(numtaps: int, fs: float) -> None:
  if not isinstance(numtaps, (int, np.integer)) or numtaps < 1:
    raise ValueError(f"numtaps: expected an int >= 1, got {numtaps!r}")
  if not fs > 0:
    raise ValueError(f"fs: expected a positive sampling rate, got {fs!r}")


# ---------------------------------------------------------------------------
# Special functions for both namespaces.


def _i0(x, xp: types.ModuleType):
  return scipy.special.i0(x) if xp is np else jax.scipy.special.i0(x)


def _j1(x, xp: types.ModuleType):
  """Bessel J1. jax has no j1, so the jnp form is a rational approximation
  (Numerical Recipes `bessj1`, absolute error < 1e-8 in float64)."""
  if xp is np:
    return scipy.special.j1(x)
  ax = jnp.abs(x)
  y = x * x
  near = x * (72362614232.0 + y * (-7895059235.0 + y * (242396853.1 + y * (
      -2972611.439 + y * (15704.48260 + y * -30.16036606)))))
  near = near / (144725228442.0 + y * (2300535178.0 + y * (18583304.74 + y * (
      99447.43394 + y * (376.9991397 + y)))))
  # The far branch is evaluated on max(|x|, 8) so that `where` sees no NaN
  # or infinity in either branch (safe for gradients).
  af = jnp.maximum(ax, 8.0)
  z = 8.0 / af
  zz = z * z
  phase = af - 2.356194491
  p = 1.0 + zz * (0.183105e-2 + zz * (-0.3516396496e-4 + zz * (
      0.2457520174e-5 + zz * -0.240337019e-6)))
  q = 0.04687499995 + zz * (-0.2002690873e-3 + zz * (0.8449199096e-5 + zz * (
      -0.88228987e-6 + zz * 0.105787412e-6)))
  far = jnp.sqrt(0.636619772 / af) * (jnp.cos(phase) * p - z * jnp.sin(phase) * q)
  return jnp.where(ax < 8.0, near, jnp.sign(x) * far)


def kaiser_atten(numtaps: int, width_nyq):
  """Stop-band attenuation (dB) of a Kaiser FIR (scipy.signal.kaiser_atten).

  `width_nyq` is the transition width as a fraction of the Nyquist rate."""
  return 2.285 * (numtaps - 1) * np.pi * width_nyq + 7.95


def kaiser_beta(atten, xp: types.ModuleType = np):
  """Kaiser window beta for an attenuation in dB (scipy.signal.kaiser_beta)."""
  high = 0.1102 * (atten - 8.7)
  excess = xp.maximum(atten - 21.0, 0.0)
  # `excess ** 0.4` has an infinite derivative at 0; `excess_safe` keeps the
  # unused branch finite so gradients through `where` stay finite.
  excess_safe = xp.where(excess > 0, excess, 1.0)
  mid = 0.5842 * excess_safe ** 0.4 + 0.07886 * excess
  return xp.where(atten > 50, high, xp.where(atten > 21, mid, 0.0 * atten))


def kaiser_window(numtaps: int, beta, xp: types.ModuleType = np):
  """Symmetric Kaiser window `[numtaps]` (numpy.kaiser), traceable in beta."""
  alpha = (numtaps - 1) / 2.0
  ratio = (np.arange(numtaps) - alpha) / alpha
  arg = np.sqrt(np.clip(1.0 - ratio ** 2, 0.0, None))
  return _i0(beta * arg, xp) / _i0(beta, xp)


def _centered_taps(numtaps: int) -> np.ndarray:
  """Tap positions relative to the filter centre, `[numtaps]`."""
  return np.arange(numtaps) - (numtaps - 1) / 2.0


def _jinc(cutoff, fs: float, numtaps: int, xp: types.ModuleType):
  """Ideal radial low-pass J1(2 pi f_c r) / (pi r) sampled on the tap grid.

  At r == 0 (odd numtaps only) it takes its limit f_c; the official code
  produces NaN there (it only ever uses even numtaps)."""
  x = _centered_taps(numtaps) / fs
  r = np.hypot(*np.meshgrid(x, x))
  r_safe = np.where(r > 0, r, 1.0)
  ring = _j1(2 * cutoff * (np.pi * r_safe), xp) / (np.pi * r_safe)
  return xp.where(r > 0, ring, cutoff * xp.ones_like(ring))


@register_filter_design("kaiser")
def kaiser_design(numtaps, cutoff, width, fs, radial, xp):
  """Kaiser-windowed sinc (separable) or jinc (radial): the official design.

  The window's beta comes from the attenuation that a Kaiser filter of
  `numtaps` reaches over a transition band of `width` (scipy.signal.firwin).
  """
  nyquist = fs / 2
  beta = kaiser_beta(kaiser_atten(numtaps, width / nyquist), xp)
  window = kaiser_window(numtaps, beta, xp)
  if radial:
    taps = _jinc(cutoff, fs, numtaps, xp) * (window[:, None] * window[None, :])
  else:
    cutoff_nyq = cutoff / nyquist
    taps = cutoff_nyq * xp.sinc(cutoff_nyq * _centered_taps(numtaps)) * window
  return taps / xp.sum(taps)


@register_filter_design("lanczos")
def lanczos_design(numtaps, cutoff, width, fs, radial, xp):
  """Lanczos-windowed sinc/jinc: window sinc(2 n / numtaps), n from centre.

  The window's main lobe spans the whole filter, so the transition width is
  set by `numtaps` alone; `width` is accepted for a common signature and
  does not change the taps.
  """
  del width
  n = _centered_taps(numtaps)
  window = xp.asarray(np.sinc(n / (numtaps / 2.0)))
  if radial:
    taps = _jinc(cutoff, fs, numtaps, xp) * (window[:, None] * window[None, :])
  else:
    cutoff_nyq = cutoff / (fs / 2)
    taps = cutoff_nyq * xp.sinc(cutoff_nyq * n) * window
  return taps / xp.sum(taps)
