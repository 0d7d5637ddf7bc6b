"""`python -m sg3jax.spectrum --network=...`: see sg3jax.cli.spectrum."""

import sys

from sg3jax.cli import spectrum

if __name__ == "__main__":
  spectrum.run(sys.argv)
