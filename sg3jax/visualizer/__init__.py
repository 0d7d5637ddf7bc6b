"""The browser visualizer (`sg3jax visualize`): a Starlette server that
renders a generator's frames from the page's controls."""

from sg3jax.visualizer.render import Controls
from sg3jax.visualizer.render import Renderer
from sg3jax.visualizer.render import View
from sg3jax.visualizer.server import create_app
from sg3jax.visualizer.server import Session
from sg3jax.visualizer.server import start
