"""Command-line tools: one module per `sg3jax` subcommand."""
