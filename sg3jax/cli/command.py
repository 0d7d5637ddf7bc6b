"""What every sg3jax command shares: its own flags, parsed from argv."""

import sys
from collections.abc import Callable

from absl import flags


def run(flag_values: flags.FlagValues, main: Callable[[list[str]], None],
        argv: list[str]) -> None:
  """Parses `flag_values` from `argv`, then calls `main(remaining args)`.

  Each command keeps its flags in its own `FlagValues` (the sg3jax script
  imports several commands, and absl's global flags would clash); a bad
  flag exits with a message naming it.
  """
  flag_values.unparse_flags()  # a second run in one process starts afresh
  # ml_collections' config flags look for their `--config.<field>`
  # overrides in sys.argv, so a call from Python sees `argv` there too.
  saved_argv, sys.argv = sys.argv, list(argv)
  try:
    remaining = flag_values(argv)
  except flags.Error as e:
    sys.exit(f"{argv[0]}: {e}")
  finally:
    sys.argv = saved_argv
  main(remaining)
