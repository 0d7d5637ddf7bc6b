"""The fused filtered leaky ReLU as Pallas kernels: Mosaic on TPU
(`tpu.py`), Triton on NVIDIA GPUs (`gpu.py`), sharing their planning
(`plan.py`) and polyphase stages (`stages.py`); `fused.py` is the entry
point with its custom VJP."""

from kernels.filtered_lrelu.common import Tiling
from kernels.filtered_lrelu.common import Unsupported
from kernels.filtered_lrelu.fused import BACKENDS
from kernels.filtered_lrelu.fused import check_supported
from kernels.filtered_lrelu.fused import filtered_lrelu_pallas
from kernels.filtered_lrelu.fused import make_config
