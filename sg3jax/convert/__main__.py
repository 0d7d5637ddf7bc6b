"""`python -m sg3jax.convert <pkl> <outdir>`: see sg3jax.cli.convert."""

import sys

from sg3jax.cli import convert

convert.run(sys.argv)
