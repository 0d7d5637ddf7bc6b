"""Converts images into a training dataset (the official dataset_tool.py).

    sg3jax dataset --source=photos/ --dest=datasets/photos-256.zip \\
        --transform=center-crop --resolution=256
    sg3jax dataset --source=demo:64 --dest=datasets/demo64.zip
    sg3jax dataset --source=photos/ --dest=datasets/wide-256x512.zip \
        --transform=center-crop --resolution=512x256

--resolution is 'N' or 'WxH' (width first, as the official tool): 512x256
writes 256 high, 512 wide images, for `--config.resolution=256x512` (HxW)
training. A non-square size is written only when --resolution asks for
one; center-crop then takes the largest centred region of that aspect.

--source: a folder of images (recursive; labels from its dataset.json), a
.zip of them, demo[:RESOLUTION] (the embedded demo dataset) or
tfds:DIR[:SPLIT]. --dest: a .zip (stored, uncompressed) or a folder, new or
empty. Writes `00000/img00000000.png`, ... and `dataset.json`; the output
opens with `sg3jax.data.open_dataset`. See sg3jax.data.tool.
"""

import sys

from absl import flags

from sg3jax.cli import command
from sg3jax.data import tool

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_SOURCE = flags.DEFINE_string(
    "source", None, "folder, .zip, demo[:RESOLUTION] or tfds:DIR[:SPLIT]",
    required=True, flag_values=FLAGS)
_DEST = flags.DEFINE_string("dest", None, "output .zip or folder",
                            required=True, flag_values=FLAGS)
_RESOLUTION = flags.DEFINE_string(
    "resolution", None, "output size, 'N' or 'WxH' (default: keep)",
    flag_values=FLAGS)
_TRANSFORM = flags.DEFINE_enum(
    "transform", None, list(tool.TRANSFORMS),
    "crop before resizing (needs --resolution)", flag_values=FLAGS)
_MAX_IMAGES = flags.DEFINE_integer("max-images", None,
                                   "read at most this many source images",
                                   lower_bound=1, flag_values=FLAGS)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    sys.exit(f"{argv[0]}: unexpected arguments {argv[1:]}")
  try:
    resolution = (None if _RESOLUTION.value is None
                  else tool.parse_resolution(_RESOLUTION.value))
    count = tool.convert_dataset(_SOURCE.value, _DEST.value,
                                 resolution=resolution,
                                 transform=_TRANSFORM.value,
                                 max_images=_MAX_IMAGES.value)
  except ValueError as e:
    sys.exit(f"{argv[0]}: {e}")
  print(f"wrote {count} images to {_DEST.value}")


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
