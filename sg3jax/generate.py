"""`python -m sg3jax.generate --network=...`: see sg3jax.cli.generate."""

import sys

from sg3jax.cli import generate

if __name__ == "__main__":
  generate.run(sys.argv)
