"""Runs a generator exported by `sg3jax export`, without sg3jax.

This file is copied into every export directory; it needs only jax (with
flatbuffers, which `jax.export` deserialization uses) and NumPy, and Pillow
for the command line:

    import loader
    G = loader.load("out/export")
    images = G(z, c, psi=0.7)  # z [N, z_dim], c [N, c_dim] -> [N, H, W, C]

    python out/export/loader.py out/export --seeds=0,1,2 --psi=0.7 \\
        --outdir=out/images

The directory holds `generator.jax` (a serialized `jax.export` module with
a symbolic batch size, lowered for the platforms the manifest lists),
`weights.npz` (the generator's variables, passed to the module in the
manifest's order) and `manifest.json`.
"""

import argparse
import json
import pathlib

import jax
import numpy as np

FORMAT = "sg3jax-generator-export-1"


class ExportedGenerator:
  """z `[N, z_dim]`, c `[N, c_dim]`, psi -> uint8 images `[N, H, W, C]`."""

  def __init__(self, directory: str | pathlib.Path):
    directory = pathlib.Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
      raise ValueError(f"{directory}: not an sg3jax export (no "
                       "manifest.json)")
    self.manifest = json.loads(manifest_path.read_text())
    if self.manifest.get("format") != FORMAT:
      raise ValueError(f"{manifest_path}: format: expected {FORMAT!r}, got "
                       f"{self.manifest.get('format')!r}")
    self.exported = jax.export.deserialize(
        bytearray((directory / "generator.jax").read_bytes()))
    with np.load(directory / "weights.npz") as npz:
      missing = [n for n in self.manifest["weights"] if n not in npz.files]
      if missing:
        raise ValueError(f"{directory / 'weights.npz'}: missing {missing}")
      self.weights = [jax.device_put(npz[n])
                      for n in self.manifest["weights"]]
    self._call = jax.jit(self.exported.call)

  @property
  def z_dim(self) -> int:
    return self.manifest["z_dim"]

  @property
  def c_dim(self) -> int:
    return self.manifest["c_dim"]

  def __call__(self, z: np.ndarray, c: np.ndarray | None = None,
               psi: float = 1.0) -> np.ndarray:
    """uint8 images `[N, H, W, C]` (the generator's [-1, 1] output times
    127.5 plus 128, clipped, as the official gen_images.py writes them).

    `c` may be left out when the generator is unconditional (c_dim 0).
    """
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != self.z_dim or len(z) == 0:
      raise ValueError(f"z: expected [N >= 1, {self.z_dim}], got {z.shape}")
    if c is None:
      if self.c_dim:
        raise ValueError(f"c: the generator is conditional; expected "
                         f"[{len(z)}, {self.c_dim}], got None")
      c = np.zeros((len(z), 0), np.float32)
    c = np.asarray(c, np.float32)
    if c.shape != (len(z), self.c_dim):
      raise ValueError(f"c: expected [{len(z)}, {self.c_dim}], got {c.shape}")
    return np.asarray(self._call(self.weights, z, c, np.float32(psi)))


def load(directory: str | pathlib.Path) -> ExportedGenerator:
  """The exported generator in `directory` (see the module docstring)."""
  return ExportedGenerator(directory)


def seed_latents(seeds: list[int], z_dim: int) -> np.ndarray:
  """z `[len(seeds), z_dim]`: `np.random.RandomState(seed).randn(z_dim)`
  for each seed, as the official gen_images.py draws them."""
  return np.stack([np.random.RandomState(s).randn(z_dim)
                   for s in seeds]).astype(np.float32)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("directory", help="the export directory")
  parser.add_argument("--seeds", default="0", help="seeds, e.g. '0,1,2'")
  parser.add_argument("--psi", type=float, default=1.0,
                      help="truncation psi")
  parser.add_argument("--class", dest="class_idx", type=int, default=None,
                      help="class label (conditional generators)")
  parser.add_argument("--outdir", default=".", help="where to write PNGs")
  args = parser.parse_args()
  from PIL import Image  # pylint: disable=g-import-not-at-top
  generator = load(args.directory)
  seeds = [int(s) for s in args.seeds.split(",")]
  c = None
  if args.class_idx is not None:
    if not 0 <= args.class_idx < generator.c_dim:
      parser.error(f"--class: expected 0..{generator.c_dim - 1}, got "
                   f"{args.class_idx}")
    c = np.zeros((len(seeds), generator.c_dim), np.float32)
    c[:, args.class_idx] = 1
  images = generator(seed_latents(seeds, generator.z_dim), c, args.psi)
  outdir = pathlib.Path(args.outdir)
  outdir.mkdir(parents=True, exist_ok=True)
  for seed, image in zip(seeds, images):
    path = outdir / f"seed{seed:04d}.png"
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image
                    ).save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
  main()
