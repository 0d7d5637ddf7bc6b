"""Analyses of a generator the StyleGAN3 paper shows: texture sticking,
equivariance error maps, average power spectra, internal representations
and latent interpolation videos. Pure functions returning arrays; the
figures are in `sg3jax.analysis.figures`."""

from sg3jax.analysis.eqmaps import equivariance_maps
from sg3jax.analysis.eqmaps import official_psnr
from sg3jax.analysis.internals import capture_layers
from sg3jax.analysis.internals import channel_tiles
from sg3jax.analysis.internals import layer_names
from sg3jax.analysis.internals import resolve_layers
from sg3jax.analysis.render import class_labels
from sg3jax.analysis.render import input_transform
from sg3jax.analysis.render import map_latents
from sg3jax.analysis.render import official_samples
from sg3jax.analysis.render import render_ws
from sg3jax.analysis.render import seed_image_batches
from sg3jax.analysis.render import seed_latents
from sg3jax.analysis.render import seed_ws
from sg3jax.analysis.render import synthesize
from sg3jax.analysis.render import to_uint8
from sg3jax.analysis.spectrum import average_power_spectrum
from sg3jax.analysis.spectrum import dataset_image_batches
from sg3jax.analysis.spectrum import image_moments
from sg3jax.analysis.spectrum import kaiser_window
from sg3jax.analysis.spectrum import mean_std
from sg3jax.analysis.spectrum import power_spectrum_sum
from sg3jax.analysis.spectrum import spectrum_heatmap
from sg3jax.analysis.spectrum import spectrum_slices
from sg3jax.analysis.spectrum import subset_indices
from sg3jax.analysis.sticking import average_image
from sg3jax.analysis.sticking import default_segment
from sg3jax.analysis.sticking import neighbourhood_latents
from sg3jax.analysis.sticking import pixel_strip
from sg3jax.analysis.video import frame_strip
from sg3jax.analysis.video import interpolate_loop
from sg3jax.analysis.video import keyframe_seeds
from sg3jax.analysis.video import layout_grid
from sg3jax.analysis.video import render_frames
