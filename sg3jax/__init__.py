"""sg3jax: StyleGAN3 in JAX/Flax.

Importing the package installs `cli.main.CommandFinder`, which makes
`python -m sg3jax.<command>` run an `sg3jax <command>`.
"""

import sys

from sg3jax.cli import main as _cli_main

if not any(isinstance(f, _cli_main.CommandFinder) for f in sys.meta_path):
  sys.meta_path.append(_cli_main.CommandFinder())
