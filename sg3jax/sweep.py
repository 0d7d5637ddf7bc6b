"""`python -m sg3jax.sweep --config=... --workdir=...`: see sg3jax.cli.sweep."""

import sys

from sg3jax.cli import sweep

if __name__ == "__main__":
  sweep.run(sys.argv)
