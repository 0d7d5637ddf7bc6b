"""`XLA_FLAGS` for a process with several host (CPU) devices.

Kept free of jax imports: scripts set the flags before importing jax.
"""

import os


def xla_flags(count: int) -> str:
  """The current `XLA_FLAGS` (tests/conftest.py's) plus `count` host
  devices, so that a subprocess compiles as the test process does."""
  return (f"{os.environ.get('XLA_FLAGS', '')} "
          f"--xla_force_host_platform_device_count={count}").strip()
