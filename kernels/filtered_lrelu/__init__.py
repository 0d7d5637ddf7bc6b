"""The fused filtered leaky ReLU Pallas kernel."""

from kernels.filtered_lrelu.kernel import BlockSizes
from kernels.filtered_lrelu.kernel import filtered_lrelu_pallas
