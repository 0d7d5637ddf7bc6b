"""Serving artifacts of a generator: `jax.export` modules and their
standalone loader (`loader.py`, which never imports sg3jax)."""

from sg3jax.serving.export import export_generator
from sg3jax.serving.export import named_leaves
from sg3jax.serving.export import PLATFORMS
from sg3jax.serving.export import serving_function
from sg3jax.serving.export import serving_module
from sg3jax.serving.export import write_export
