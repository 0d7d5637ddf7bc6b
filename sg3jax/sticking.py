"""`python -m sg3jax.sticking --network=...`: see sg3jax.cli.sticking."""

import sys

from sg3jax.cli import sticking

if __name__ == "__main__":
  sticking.run(sys.argv)
