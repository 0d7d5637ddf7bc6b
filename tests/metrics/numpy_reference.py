"""Literal NumPy transcriptions of the official equivariance operators.

Test oracles: float64, NHWC, Python-int crops and pastes exactly as
metrics/equivariance.py writes them, and torch's affine_grid/grid_sample
(align_corners=False, zeros padding) spelled out.
"""

import numpy as np

from tests.ops import numpy_reference


def sinc(x):
  y = np.abs(np.asarray(x, np.float64) * np.pi)
  return np.where(y < 1e-30, 1.0, np.sin(y) / np.maximum(y, 1e-30))


def lanczos_window(x, a):
  x = np.abs(x) / a
  return np.where(x < 1, sinc(x), 0.0)


def rotation_matrix(angle):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], np.float64)


def integer_translation(x, tx, ty):
  _, h, w, _ = x.shape
  ix, iy = int(np.round(tx * w)), int(np.round(ty * h))
  z = np.zeros_like(x)
  m = np.zeros_like(x)
  if abs(ix) < w and abs(iy) < h:
    y = x[:, max(-iy, 0):h + min(-iy, 0), max(-ix, 0):w + min(-ix, 0)]
    z[:, max(iy, 0):h + min(iy, 0), max(ix, 0):w + min(ix, 0)] = y
    m[:, max(iy, 0):h + min(iy, 0), max(ix, 0):w + min(ix, 0)] = 1
  return z, m


def filter2d(x, f, padding=(0, 0, 0, 0)):
  """Official filter2d: f `[fh, fw]`, padding (x0, x1, y0, y1)."""
  fh, fw = f.shape
  px0, px1, py0, py1 = padding
  return numpy_reference.upfirdn2d(
      x, f, padding=(px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2,
                     py1 + (fh - 1) // 2))


def fractional_translation(x, tx, ty, a=3):
  _, h, w, _ = x.shape
  tx, ty = tx * w, ty * h
  ix, iy = int(np.floor(tx)), int(np.floor(ty))
  fx, fy = tx - ix, ty - iy
  b = a - 1
  z = np.zeros_like(x)
  zx0, zy0 = max(ix - b, 0), max(iy - b, 0)
  zx1, zy1 = min(ix + a, 0) + w, min(iy + a, 0) + h
  if zx0 < zx1 and zy0 < zy1:
    taps = np.arange(a * 2) - b
    filter_x = (sinc(taps - fx) * sinc((taps - fx) / a))[None, :]
    filter_y = (sinc(taps - fy) * sinc((taps - fy) / a))[:, None]
    y = filter2d(x, filter_x / filter_x.sum(), padding=(b, a, 0, 0))
    y = filter2d(y, filter_y / filter_y.sum(), padding=(0, 0, b, a))
    y = y[:, max(b - iy, 0):h + b + a + min(-iy - a, 0),
          max(b - ix, 0):w + b + a + min(-ix - a, 0)]
    z[:, zy0:zy1, zx0:zx1] = y
  m = np.zeros_like(x)
  mx0, my0 = max(ix + a, 0), max(iy + a, 0)
  mx1, my1 = min(ix - b, 0) + w, min(iy - b, 0) + h
  if mx0 < mx1 and my0 < my1:
    m[:, my0:my1, mx0:mx1] = 1
  return z, m


def affine_bandlimit_filter(mat, a=3, amax=16, aflt=64, up=4):
  taps = np.roll((np.arange(aflt * up * 2 - 1) + 1) / up - aflt,
                 1 - aflt * up)
  yi, xi = np.meshgrid(taps, taps, indexing="ij")
  xo = xi * mat[0, 0] + yi * mat[0, 1]
  yo = xi * mat[1, 0] + yi * mat[1, 1]
  fi = sinc(xi) * sinc(yi)
  fo = sinc(xo) * sinc(yo)
  f = np.fft.ifftn(np.fft.fftn(fi) * np.fft.fftn(fo)).real
  wi = lanczos_window(xi, a) * lanczos_window(yi, a)
  wo = lanczos_window(xo, a) * lanczos_window(yo, a)
  w = np.fft.ifftn(np.fft.fftn(wi) * np.fft.fftn(wo)).real
  f = f * w
  c = (aflt - amax) * up
  f = np.roll(f, [aflt * up - 1] * 2, axis=(0, 1))[c:-c, c:-c]
  f = np.pad(f, ((0, 1), (0, 1))).reshape(amax * 2, up, amax * 2, up)
  f = f / f.sum(axis=(0, 2), keepdims=True) / up ** 2
  return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def _grid_sample(img, gx, gy, mode):
  """torch grid_sample, zeros padding, align_corners=False; img NHWC."""
  _, hu, wu, _ = img.shape
  px = ((gx + 1) * wu - 1) / 2
  py = ((gy + 1) * hu - 1) / 2

  def at(yy, xx):
    valid = (xx >= 0) & (xx < wu) & (yy >= 0) & (yy < hu)
    v = img[:, np.clip(yy, 0, hu - 1), np.clip(xx, 0, wu - 1)]
    return v * valid[None, :, :, None]

  if mode == "nearest":
    return at(np.round(py).astype(int), np.round(px).astype(int))
  x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
  wx, wy = px - x0, py - y0
  out = 0
  for dy, ky in ((0, 1 - wy), (1, wy)):
    for dx, kx in ((0, 1 - wx), (1, wx)):
      out = out + at(y0 + dy, x0 + dx) * (ky * kx)[None, :, :, None]
  return out


def affine_transformation(x, mat, up=4, a=3, amax=16):
  _, h, w, _ = x.shape
  f = affine_bandlimit_filter(mat, a=a, amax=amax, up=up)
  p = f.shape[0] // 2
  theta = np.linalg.inv(mat)
  theta[:2, 2] *= 2
  theta[0, 2] += 1 / up / w
  theta[1, 2] += 1 / up / h
  theta[0, :] *= w / (w + p / up * 2)
  theta[1, :] *= h / (h + p / up * 2)
  base_x = np.linspace(-1, 1, w) * (w - 1) / w
  base_y = np.linspace(-1, 1, h) * (h - 1) / h
  gx = base_x[None, :] * theta[0, 0] + base_y[:, None] * theta[0, 1] + theta[
      0, 2]
  gy = base_x[None, :] * theta[1, 0] + base_y[:, None] * theta[1, 1] + theta[
      1, 2]
  fh, fw = f.shape
  y = numpy_reference.upfirdn2d(
      x, f, up=(up, up), padding=(p + (fw + up - 1) // 2, p + (fw - up) // 2,
                                  p + (fh + up - 1) // 2, p + (fh - up) // 2),
      gain=up * up)
  z = _grid_sample(y, gx, gy, "bilinear")
  m = np.zeros_like(y)
  c = p * 2 + 1
  m[:, c:-c, c:-c] = 1
  m = _grid_sample(m, gx, gy, "nearest")
  return z, m


def fractional_rotation(x, angle, a=3):
  return affine_transformation(x, rotation_matrix(angle), a=a, amax=a * 2)


def fractional_pseudo_rotation(x, angle, a=3):
  f = affine_bandlimit_filter(rotation_matrix(-angle), a=a, amax=a * 2, up=1)
  y = filter2d(x, f)
  m = np.zeros_like(y)
  c = f.shape[0] // 2
  m[:, c:-c, c:-c] = 1
  return y, m


def eq_terms(reference, image, kind, value):
  """Per-sample (masked squared error sum, mask sum) `[N]` of rendered
  reference and transformed images, as compute_equivariance_metrics."""
  reference = np.asarray(reference, np.float64)
  image = np.asarray(image, np.float64)
  if kind == "rot":
    ref, ref_mask = fractional_rotation(reference, value)
    pseudo, pseudo_mask = fractional_pseudo_rotation(image, value)
    diff, mask = ref - pseudo, ref_mask * pseudo_mask
  else:
    op = integer_translation if kind == "int" else fractional_translation
    ref, mask = op(reference, value[0], value[1])
    diff = ref - image
  return (np.sum(np.square(diff) * mask, axis=(1, 2, 3)),
          np.sum(mask, axis=(1, 2, 3)))
