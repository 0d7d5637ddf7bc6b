"""The StyleGAN2/3 loss terms as pure functions (official training/loss.py).

Non-saturating logistic losses and the R1 penalty, without augmentation and
without EMA updates, including the official blur of D's inputs (config R's
fade-in): a separable kernel 2^(-(x / sigma)^2) of floor(3 sigma) taps each
side, normalized; and the path-length regulariser of the StyleGAN2 config.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sg3jax import ops


def blur_images(img: jax.Array, blur_sigma: float) -> jax.Array:
  """The official run_D blur of `[N, H, W, C]` images (identity for 0)."""
  blur_size = int(np.floor(blur_sigma * 3))
  if blur_size <= 0:
    return img
  f = np.exp2(-np.square(np.arange(-blur_size, blur_size + 1) / blur_sigma))
  return ops.upfirdn2d(img, (f / f.sum()).astype(np.float32),
                       padding=blur_size)


def blur_images_traced(img: jax.Array, blur_sigma: jax.Array,
                       blur_size: jax.Array, max_blur_size: int
                       ) -> jax.Array:
  """`blur_images` with a traced sigma (training's blur fade-in).

  Args:
    img: `[N, H, W, C]`.
    blur_sigma: scalar > 0.
    blur_size: scalar int, floor(3 sigma) as the host computes it.
    max_blur_size: static bound on `blur_size`; taps past `blur_size` are
      zero, so the result equals the official kernel of the current size.
  """
  offsets = jnp.arange(-max_blur_size, max_blur_size + 1, dtype=jnp.float32)
  sigma = jnp.maximum(jnp.asarray(blur_sigma, jnp.float32), 1e-8)
  taps = jnp.where(jnp.abs(offsets) <= blur_size,
                   jnp.exp2(-jnp.square(offsets / sigma)), 0.0)
  return ops.upfirdn2d(img, taps / jnp.sum(taps), padding=max_blur_size)


def discriminator_logits(D, d_variables, img: jax.Array, c: jax.Array | None,
                         blur_sigma: float = 0.0) -> jax.Array:
  """D(blur(img), c) as per-sample logits `[N]`."""
  return D.apply(d_variables, blur_images(img, blur_sigma), c)[:, 0]


def generated_logits(G, g_variables, D, d_variables, gen_z: jax.Array,
                     gen_c: jax.Array | None, blur_sigma: float = 0.0
                     ) -> jax.Array:
  """D(G(z, c), c) `[N]` (truncation 1, no style mixing, no EMA updates)."""
  img = G.apply(g_variables, gen_z, gen_c)
  return discriminator_logits(D, d_variables, img, gen_c, blur_sigma)


def r1_penalty(D, d_variables, real_img: jax.Array, real_c: jax.Array | None,
               blur_sigma: float = 0.0) -> jax.Array:
  """|d sum(D(x)) / dx|^2 per sample `[N]`, w.r.t. the unblurred reals."""
  grads = jax.grad(lambda x: jnp.sum(discriminator_logits(
      D, d_variables, x, real_c, blur_sigma)))(real_img)
  return jnp.sum(jnp.square(grads), axis=(1, 2, 3))


def loss_terms(G, g_variables, D, d_variables, real_img: jax.Array,
               real_c: jax.Array | None, gen_z: jax.Array,
               gen_c: jax.Array | None, *, r1_gamma: float,
               blur_sigma: float = 0.0) -> dict[str, jax.Array]:
  """Per-sample loss terms `[N]` as official StyleGAN2Loss computes them.

  Returns:
    `G_main` = softplus(-D(G(z))), `D_gen` = softplus(D(G(z))),
    `D_real` = softplus(-D(x)), `R1` = r1_penalty * r1_gamma / 2.
    The phase losses are G_main.mean(), D_gen.mean() + D_real.mean() and
    R1.mean(); real_img is NHWC in [-1, 1].
  """
  gen = generated_logits(G, g_variables, D, d_variables, gen_z, gen_c,
                         blur_sigma)
  real = discriminator_logits(D, d_variables, real_img, real_c, blur_sigma)
  return {
      "G_main": jax.nn.softplus(-gen),
      "D_gen": jax.nn.softplus(gen),
      "D_real": jax.nn.softplus(-real),
      "R1": r1_penalty(D, d_variables, real_img, real_c, blur_sigma) * (
          r1_gamma / 2),
  }


def path_length_noise(key: jax.Array, img_shape: tuple[int, ...],
                      dtype=jnp.float32) -> jax.Array:
  """The official `pl_noise`: N(0, 1) / sqrt(H W), shape `img_shape` NHWC."""
  return jax.random.normal(key, img_shape, dtype) / np.sqrt(
      img_shape[1] * img_shape[2])


def path_lengths(synthesize: Callable[[jax.Array], jax.Array], ws: jax.Array,
                 pl_noise: jax.Array) -> jax.Array:
  """Official `pl_lengths` `[N]` of ws `[N, num_ws, w_dim]`.

  g = d sum(synthesize(ws) * pl_noise) / d ws, and the length is
  sqrt(mean over ws of |g|^2 over w_dim). Differentiable (second order).
  """
  grads = jax.grad(lambda w: jnp.sum(synthesize(w) * pl_noise))(ws)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def path_length_penalty(pl_lengths: jax.Array, pl_mean: jax.Array, *,
                        pl_decay: float, axis_name: str | None = None
                        ) -> tuple[jax.Array, jax.Array]:
  """(penalty `[N]`, new pl_mean) as official Gpl computes them.

  pl_mean' = lerp(pl_mean, mean(pl_lengths), pl_decay) and penalty =
  (pl_lengths - pl_mean')^2, differentiated through the batch mean as the
  official code does. Inside `shard_map`, `axis_name` makes the value
  (and the returned pl_mean') the global batch's mean, while the gradient
  is that of the device's own mean, as on each official GPU.
  """
  batch_mean = jnp.mean(pl_lengths)
  if axis_name is not None:
    global_mean = jax.lax.pmean(jax.lax.stop_gradient(batch_mean), axis_name)
    batch_mean = batch_mean + jax.lax.stop_gradient(global_mean - batch_mean)
  new_pl_mean = pl_mean + pl_decay * (batch_mean - pl_mean)
  return (jnp.square(pl_lengths - new_pl_mean),
          jax.lax.stop_gradient(new_pl_mean))
