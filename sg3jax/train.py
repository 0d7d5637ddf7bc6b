"""`python -m sg3jax.train --config=... --workdir=...`: see sg3jax.cli.train."""

import sys

from sg3jax.cli import train

if __name__ == "__main__":
  train.run(sys.argv)
