"""`python -m sg3jax.eqmaps --network=...`: see sg3jax.cli.eqmaps."""

import sys

from sg3jax.cli import eqmaps

if __name__ == "__main__":
  eqmaps.run(sys.argv)
