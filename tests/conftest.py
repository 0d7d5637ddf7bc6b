"""pytest set-up shared by all tests."""

from absl import flags

# absltest helpers (create_tempdir, flagsaver) read absl flags, which pytest
# never parses; take the defaults.
flags.FLAGS.mark_as_parsed()
