"""Continuous-domain operators as pure functions on NHWC arrays."""

from sg3jax.ops.upfirdn2d import parse_padding
from sg3jax.ops.upfirdn2d import setup_filter
from sg3jax.ops.upfirdn2d import upfirdn2d
from sg3jax.ops.bias_act import activations as bias_act_activations
from sg3jax.ops.bias_act import bias_act
from sg3jax.ops.conv import conv2d
from sg3jax.ops.conv import modulated_conv2d
from sg3jax.ops.filtered_lrelu import filtered_lrelu
from sg3jax.ops.filtered_lrelu import kernel_platforms
from sg3jax.ops.filtered_lrelu import kernel_refusal
