"""`python -m sg3jax.dataset --source=... --dest=...`: see sg3jax.cli.dataset.
"""

import sys

from sg3jax.cli import dataset

if __name__ == "__main__":
  dataset.run(sys.argv)
