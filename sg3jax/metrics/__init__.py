"""Quality metrics of generators: equivariance (EQ-T, EQ-T_frac, EQ-R),
FID, KID, precision/recall, IS, PPL."""

from sg3jax.metrics.equivariance import apply_affine_transformation
from sg3jax.metrics.equivariance import apply_fractional_pseudo_rotation
from sg3jax.metrics.equivariance import apply_fractional_rotation
from sg3jax.metrics.equivariance import apply_fractional_translation
from sg3jax.metrics.equivariance import apply_integer_translation
from sg3jax.metrics.equivariance import compute_equivariance
from sg3jax.metrics.equivariance import construct_affine_bandlimit_filter
from sg3jax.metrics.equivariance import eq_squared_error
from sg3jax.metrics.equivariance import eq_terms
from sg3jax.metrics.equivariance import psnr
from sg3jax.metrics.equivariance import rotation_matrix
from sg3jax.metrics.fid import FeatureStats
from sg3jax.metrics.fid import frechet_distance
from sg3jax.metrics.inception import InceptionV3
from sg3jax.metrics.inception import load_inception
from sg3jax.metrics.kid import kernel_inception_distance
from sg3jax.metrics.metric_main import calc_metric
from sg3jax.metrics.metric_main import list_valid_metrics
from sg3jax.metrics.metric_main import report_metric
from sg3jax.metrics.ppl import compute_ppl
from sg3jax.metrics.vgg16 import VGG16
from sg3jax.metrics.vgg16 import load_vgg16
