"""Checkpoints, in one place for the loop, the CLI and the visualizer.

`networks`: network checkpoints (`save_networks`, `load_networks`,
`load_generator` for every `--network`, `convert_official_pickle`);
`run`: a training run's checkpoints (`RunCheckpoints`, unreadable steps
skipped); `checksums`: the SHA256SUMS that both write and verify.
Layered checksums <- run <- networks.
"""

from sg3jax.training.checkpoints.checksums import SUMS_FILE
from sg3jax.training.checkpoints.networks import Network
from sg3jax.training.checkpoints.networks import convert_official_pickle
from sg3jax.training.checkpoints.networks import generator_of
from sg3jax.training.checkpoints.networks import load_any_networks
from sg3jax.training.checkpoints.networks import load_generator
from sg3jax.training.checkpoints.networks import load_networks
from sg3jax.training.checkpoints.networks import read_extras
from sg3jax.training.checkpoints.networks import read_network_meta
from sg3jax.training.checkpoints.networks import save_networks
from sg3jax.training.checkpoints.run import UNREADABLE_DIR
from sg3jax.training.checkpoints.run import RunCheckpoints
from sg3jax.training.checkpoints.run import is_run_directory
from sg3jax.training.checkpoints.run import load_run_networks
