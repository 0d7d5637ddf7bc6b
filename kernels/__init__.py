"""Pallas kernels (import jax only, never sg3jax)."""
