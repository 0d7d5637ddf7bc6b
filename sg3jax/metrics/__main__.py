"""`python -m sg3jax.metrics --network=... --metrics=...`: see
sg3jax.cli.metrics."""

import sys

from sg3jax.cli import metrics

if __name__ == "__main__":
  metrics.run(sys.argv)
