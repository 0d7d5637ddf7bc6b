"""Serves the browser visualizer of a generator.

    sg3jax visualize --network=CKPT_PKL_OR_RUN_DIR [--port=8000] \\
        [--host=127.0.0.1]

Open http://localhost:8000 (on a remote GPU/TPU host, forward the port:
`ssh -L 8000:localhost:8000 host`). The page has the latent (seed,
dragged between seeds; truncation psi and cutoff; style mixing from a
second seed at chosen layers), the input transform (translate, rotate,
animated or by hand), the layer view (any synthesis layer's channels as
RGB, their FFT, or the output's equivariance error for the current
transform), switching between the checkpoints of a run directory or to
any network path, render time, frame rate and PNG download. The server
binds to localhost unless `--host` says otherwise.
"""

import sys

from absl import flags

from sg3jax import visualizer
from sg3jax.cli import common
from sg3jax.cli import command

# Flags of this command only (the sg3jax script imports several commands).
FLAGS = flags.FlagValues()
_NETWORK = common.define_network_flag(FLAGS)
_PORT = flags.DEFINE_integer("port", 8000, "port to serve on",
                             flag_values=FLAGS)
_HOST = flags.DEFINE_string("host", "127.0.0.1", "address to bind",
                            flag_values=FLAGS)


def main(argv: list[str]) -> None:
  del argv
  session = visualizer.Session(_NETWORK.value)
  if session.error:
    print(f"warning: {session.error} (load another network in the page)")
  server, thread = visualizer.start(visualizer.create_app(session),
                                    host=_HOST.value, port=_PORT.value)
  print(f"serving {_NETWORK.value} on http://{_HOST.value}:{_PORT.value} "
        "(Ctrl-C stops)")
  try:
    thread.join()
  except KeyboardInterrupt:
    server.should_exit = True
    thread.join()


def run(argv: list[str]) -> None:
  command.run(FLAGS, main, argv)


if __name__ == "__main__":
  run(sys.argv)
