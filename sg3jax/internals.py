"""`python -m sg3jax.internals --network=...`: see sg3jax.cli.internals."""

import sys

from sg3jax.cli import internals

if __name__ == "__main__":
  internals.run(sys.argv)
