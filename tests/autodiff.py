"""Values and gradients as one jitted program, for tests.

An eager `jax.vjp` compiles every primitive of the function and of its
transpose on its own (thousands of compiles for a layer); one jitted
program compiles once.
"""

import jax


def value_and_pullback(fn, primals: tuple, cotangent):
  """(fn(*primals), the tuple of its gradients w.r.t. `primals` pulled back
  from `cotangent`), computed by one jitted program."""
  def run(primals, cotangent):
    y, pullback = jax.vjp(fn, *primals)
    return y, pullback(cotangent)
  return jax.jit(run)(primals, cotangent)
