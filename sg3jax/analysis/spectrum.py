"""Average power spectra of images (the official avg_spectra.py, NHWC).

1. `image_moments` / `mean_std`: the whitening statistics of a source
   (official `stats`).
2. `average_power_spectrum`: each image is whitened with those statistics,
   multiplied by a separable Kaiser window of unit energy, zero-padded to
   `interp` times its size, and its |FFT|^2, averaged over channels, is
   averaged over the images (official `calc`).
3. `spectrum_heatmap` / `spectrum_slices`: the spectrum in dB, centred and
   optionally smoothed, and its 0 and 45 degree slices (official `heatmap`
   and `slices`).
"""

import functools
from collections.abc import Iterable
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage


def image_moments(images: np.ndarray) -> np.ndarray:
  """`[count, sum, sum of squares]` float64 of the values of `images`.

  Sum the moments of several batches, then call `mean_std`.
  """
  x = np.asarray(images, np.float64)
  return np.array([x.size, x.sum(), np.square(x).sum()])


def mean_std(moments: np.ndarray) -> tuple[float, float]:
  """(mean, standard deviation) from summed `image_moments`."""
  count, total, squares = np.asarray(moments, np.float64)
  if count <= 0:
    raise ValueError(f"moments: expected a positive count, got {count}")
  mean = total / count
  return float(mean), float(np.sqrt(max(squares / count - mean ** 2, 0.0)))


def subset_indices(size: int, num: int | None, seed: int) -> np.ndarray:
  """Indices of the images to use from a dataset of `size` images.

  All of them when `num` is None or equals `size`; otherwise `num` of them
  picked by `seed` and sorted, as the official dataset's `max_size` with
  `random_seed` picks them.
  """
  if num is None or num == size:
    return np.arange(size)
  if not 1 <= num <= size:
    raise ValueError(f"num: expected 1..{size} (the dataset size), got {num}")
  indices = np.arange(size)
  np.random.RandomState(seed % (1 << 31)).shuffle(indices)
  return np.sort(indices[:num])


def dataset_image_batches(dataset, indices: np.ndarray, *,
                          batch_size: int = 8) -> Iterator[np.ndarray]:
  """Yields `[n <= batch_size, H, W, C]` uint8 images `dataset[i]["image"]`."""
  for start in range(0, len(indices), batch_size):
    yield np.stack([np.asarray(dataset[int(i)]["image"])
                    for i in indices[start:start + batch_size]])


def kaiser_window(size: int, *, beta: float = 8.0) -> np.ndarray:
  """Separable 2-D Kaiser window `[size, size]` of unit energy.

  The 1-D window (symmetric, as torch.kaiser_window(periodic=False)) is
  scaled to unit sum of squares, so the 2-D window's energy is 1 too.
  """
  window = np.kaiser(size, beta)
  window = window / np.sqrt(np.square(window).sum())
  return np.outer(window, window)


@functools.partial(jax.jit, static_argnames=("spectrum_size",))
def power_spectrum_sum(images: jax.Array, window: jax.Array, mean: float,
                       std: float, *, spectrum_size: int) -> jax.Array:
  """Sum over the batch of the channel-mean power spectra.

  Args:
    images: `[N, H, W, C]` (uint8 or float, in the units of `mean`/`std`),
      H == W == window size.
    window: `[H, W]` (see `kaiser_window`).
    mean: whitening mean.
    std: whitening standard deviation.
    spectrum_size: FFT size S >= H (zero padding below and to the right).

  Returns:
    `[S, S]` float32, unshifted (DC at [0, 0]).
  """
  x = (images.astype(jnp.float32) - mean) / std
  x = x * window[None, :, :, None]
  pad = spectrum_size - images.shape[1]
  x = jnp.pad(x, ((0, 0), (0, pad), (0, pad), (0, 0)))
  power = jnp.square(jnp.abs(jnp.fft.fft2(x, axes=(1, 2))))
  return power.mean(axis=3).sum(axis=0)


def average_power_spectrum(batches: Iterable[np.ndarray], *, mean: float,
                           std: float, beta: float = 8.0, interp: int = 4
                           ) -> np.ndarray:
  """Average power spectrum `[S, S]` float64 of square images.

  Args:
    batches: iterable of image batches `[n, H, W, C]`, H == W, all the same
      size (e.g. uint8 as stored, or generator output quantized to uint8).
    mean: whitening mean (see `mean_std`), in the images' units.
    std: whitening standard deviation, > 0.
    beta: Kaiser window shape, >= 0.
    interp: frequency-domain interpolation factor, >= 1; S = interp * H.

  Returns:
    `[S, S]` float64, DC at [0, 0] (see `spectrum_heatmap`).
  """
  if std <= 0:
    raise ValueError(f"std: expected > 0, got {std}")
  if beta < 0:
    raise ValueError(f"beta: expected >= 0, got {beta}")
  if interp < 1:
    raise ValueError(f"interp: expected >= 1, got {interp}")
  total, count, size, window = None, 0, None, None
  for batch in batches:
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[1] != batch.shape[2]:
      raise ValueError(f"batches: expected square [n, H, H, C], got "
                       f"{batch.shape}")
    if size is None:
      size = batch.shape[1]
      window = jnp.asarray(kaiser_window(size, beta=beta), jnp.float32)
    elif batch.shape[1] != size:
      raise ValueError(f"batches: expected [n, {size}, {size}, C] as the "
                       f"first batch, got {batch.shape}")
    part = np.asarray(power_spectrum_sum(batch, window, mean, std,
                                         spectrum_size=size * interp),
                      np.float64)
    total = part if total is None else total + part
    count += len(batch)
  if not count:
    raise ValueError("batches: expected at least one image, got none")
  return total / count


def spectrum_heatmap(spectrum: np.ndarray, image_size: int, *,
                     smooth: float = 0.0) -> np.ndarray:
  """The spectrum in dB, DC centred, `[S + 1, S + 1]`.

  As avg_spectra.py: 10 log10 (floored at -300 dB), fftshift, first row
  and column repeated at the end (so the plot spans -image_size/2 ..
  image_size/2 symmetrically), then a Gaussian blur of
  `S / image_size * smooth` bins if `smooth` > 0.
  """
  spectrum = np.asarray(spectrum, np.float64)
  if spectrum.ndim != 2 or spectrum.shape[0] != spectrum.shape[1]:
    raise ValueError(f"spectrum: expected [S, S], got {spectrum.shape}")
  if smooth < 0:
    raise ValueError(f"smooth: expected >= 0, got {smooth}")
  # Exact zeros (e.g. a pure sinusoid in float32) become -300 dB, not -inf.
  hmap = np.fft.fftshift(np.log10(np.maximum(spectrum, 1e-30)) * 10)
  hmap = np.concatenate([hmap, hmap[:1, :]], axis=0)
  hmap = np.concatenate([hmap, hmap[:, :1]], axis=1)
  if smooth > 0:
    sigma = spectrum.shape[0] / image_size * smooth
    hmap = scipy.ndimage.gaussian_filter(hmap, sigma=sigma, mode="nearest")
  return hmap


def heatmap_frequencies(hmap_size: int, image_size: int) -> np.ndarray:
  """Frequency (cycles per image) of each heatmap row/column, `[hmap_size]`."""
  return np.linspace(-0.5, 0.5, num=hmap_size) * image_size


def spectrum_slices(hmap: np.ndarray, image_size: int
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{'0': (freqs, dB), '45': (freqs, dB)}: horizontal and diagonal slices
  from DC outwards, frequencies in cycles per image (official `slices`)."""
  size = hmap.shape[0]
  centre = size // 2
  idx = np.arange(centre, size)
  num = size // 2 + 1
  return {
      "0": (np.linspace(0, image_size / 2, num=num), hmap[centre, idx]),
      "45": (np.linspace(0, image_size / np.sqrt(2), num=num),
             hmap[idx, idx]),
  }
