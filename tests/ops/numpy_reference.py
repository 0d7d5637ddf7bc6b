"""Direct NumPy transcriptions of the official definitions (test oracles).

Slow and literal: zero insertion, padding, full convolution, decimation.
Images are NHWC, float64.
"""

import numpy as np


def upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0),
              flip_filter=False, gain=1.0):
  """The official upfirdn2d reference, literally. `up`, `down` are (x, y)."""
  x = np.asarray(x, np.float64)
  f = np.asarray(f, np.float64)
  n, h, w, c = x.shape
  (ux, uy), (dx, dy) = up, down
  px0, px1, py0, py1 = padding
  u = np.zeros((n, h * uy, w * ux, c))
  u[:, ::uy, ::ux] = x
  u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)),
                 (max(px0, 0), max(px1, 0)), (0, 0)))
  u = u[:, max(-py0, 0):u.shape[1] - max(-py1, 0),
        max(-px0, 0):u.shape[2] - max(-px1, 0)]
  g = np.outer(f, f) if f.ndim == 1 else f
  g = g * gain
  if not flip_filter:
    g = g[::-1, ::-1]
  kh, kw = g.shape
  oh, ow = u.shape[1] - kh + 1, u.shape[2] - kw + 1
  y = np.zeros((n, oh, ow, c))
  for i in range(kh):
    for j in range(kw):
      y += g[i, j] * u[:, i:i + oh, j:j + ow]
  return y[:, ::dy, ::dx]


def filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp,
                   flip_filter):
  """The official filtered_lrelu reference: bias, up, lrelu, clamp, down."""
  one = np.ones([1, 1])
  v = upfirdn2d(np.asarray(x, np.float64) + b, one if fu is None else fu,
                up=(up, up), padding=padding, flip_filter=flip_filter,
                gain=up * up)
  a = np.where(v > 0, v, v * slope) * gain
  if clamp is not None:
    a = np.clip(a, -clamp, clamp)
  return upfirdn2d(a, one if fd is None else fd, down=(down, down),
                   flip_filter=flip_filter)
