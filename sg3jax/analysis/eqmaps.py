"""Equivariance error maps (paper Sec. 3, Fig. 3 and Appx. E in spirit).

For ws and a transform (a translation t or a rotation by an angle):

1. the reference image is rendered with the identity input transform;
2. the transformed image with the input transform of the motion, as the
   official metric sets it (`M[:2, 2] = -t`, `M = rotation_matrix(-angle)`);
3. the transformed image is transformed back by the inverse motion with
   the official image operators (integer or Lanczos translation by -t,
   band-limited rotation by -angle);
4. the error map is |reference - back| under the operators' mask.

For rotations, the reference is first band-limited as the back-rotated
image is (`apply_fractional_pseudo_rotation(reference, -angle)`): the
official EQ-R comparison with the roles of the two images swapped, so that
a perfectly equivariant generator gives a zero map.
"""

import functools

import jax
import jax.numpy as jnp

from sg3jax.metrics import equivariance as eq
from sg3jax.networks import Generator

KINDS = eq.KINDS


def _check_value(kind: str, value: jax.Array) -> None:
  if kind not in KINDS:
    raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
  expected = () if kind == "rot" else (2,)
  if value.shape != expected:
    raise ValueError(f"value: expected shape {expected} for kind {kind!r}, "
                     f"got {value.shape}")


@functools.partial(jax.jit, static_argnames=("module", "kind"))
def _maps(variables, ws, value, *, module, kind):
  original, transformed = eq.render_reference_and_moved(module, variables,
                                                        ws, kind, value)
  if kind == "rot":
    back, back_mask = eq.apply_fractional_rotation(transformed, -value)
    reference, ref_mask = eq.apply_fractional_pseudo_rotation(original,
                                                              -value)
    mask = back_mask * ref_mask
  else:
    translate = (eq.apply_integer_translation if kind == "int"
                 else eq.apply_fractional_translation)
    back, mask = translate(transformed, *eq.image_fractions(
        -value, transformed.shape[1:3]))
    reference = original
  error = jnp.abs(reference - back).mean(axis=3)
  mask = mask.min(axis=3)
  return {"original": original, "transformed": transformed, "back": back,
          "reference": reference, "error": jnp.where(mask > 0, error, jnp.nan),
          "mask": mask}


def equivariance_maps(module: Generator, variables: dict,
                      ws: jax.typing.ArrayLike, kind: str,
                      value: jax.typing.ArrayLike) -> dict[str, jax.Array]:
  """Images and error maps of one transform for a batch of ws.

  Args:
    module: the generator.
    variables: its variables (their input transform is replaced).
    ws: `[N, num_ws, w_dim]`.
    kind: 'int' (integer translation), 'frac' (Lanczos translation) or
      'rot' (band-limited rotation).
    value: `[2]` translation (tx, ty) as fractions of the image size (for
      'int', whole pixels: round(t * size) / size), or the angle in radians
      for 'rot'.

  Returns:
    {'original': reference render `[N, H, W, C]`,
     'transformed': render with the moved input `[N, H, W, C]`,
     'back': 'transformed' moved back `[N, H, W, C]`,
     'reference': what 'back' is compared with `[N, H, W, C]` ('original',
       band-limited for 'rot'),
     'error': mean over C of |reference - back| `[N, H, W]`, NaN outside
       the mask,
     'mask': `[N, H, W]`, 1 where every operator read inside the image}.
  """
  ws = jnp.asarray(ws, jnp.float32)
  if ws.ndim != 3:
    raise ValueError(f"ws: expected [N, num_ws, w_dim], got {ws.shape}")
  value = jnp.asarray(value, jnp.float32)
  _check_value(kind, value)
  return _maps(variables, ws, value, module=module, kind=kind)


@functools.partial(jax.jit, static_argnames=("module", "kind"))
def _official_psnr(variables, ws, value, *, module, kind):
  err, mask = eq.eq_terms(module, variables, ws, kind, value)
  return eq.psnr(err, mask)


def official_psnr(module: Generator, variables: dict,
                  ws: jax.typing.ArrayLike, kind: str,
                  value: jax.typing.ArrayLike) -> jax.Array:
  """Per-sample PSNR `[N]` (dB) of the official EQ comparison (`eq_terms`:
  the reference moved forward) for the same ws and transform."""
  ws = jnp.asarray(ws, jnp.float32)
  value = jnp.asarray(value, jnp.float32)
  _check_value(kind, value)
  return _official_psnr(variables, ws, value, module=module, kind=kind)
