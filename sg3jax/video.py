"""`python -m sg3jax.video --network=...`: see sg3jax.cli.video."""

import sys

from sg3jax.cli import video

if __name__ == "__main__":
  video.run(sys.argv)
