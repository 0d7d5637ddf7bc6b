"""Lowering for GPU and TPU on a CPU host (no accelerator needed).

`lower_for_targets` traces a jitted function once with impl="auto" kernel
branches for CUDA and TPU (`ops.kernel_platforms`), then lowers it for
CUDA and for each TPU generation, as `jax.export.export(..., platforms=
[...])` does before it serializes: the Pallas TPU lowering (Mosaic, its
verifier) asks the chip kind of an abstract TPU device, and the Triton
lowering builds and verifies its IR. Errors surface as exceptions.
"""

import jax

from sg3jax import ops

TPU_KINDS = ("TPU v4", "TPU v5 lite", "TPU v5p", "TPU v6 lite")
TARGETS = ("cuda",) + TPU_KINDS
# The custom call of each kernel in the lowered module.
KERNEL_CALLS = {"cuda": "__gpu$xla.gpu.triton", "tpu": "tpu_custom_call"}


def tpu_mesh(kind: str, num_devices: int = 1) -> jax.sharding.AbstractMesh:
  """An abstract mesh of `kind` TPUs: lowering inside it targets that chip."""
  device = jax.sharding.AbstractDevice(device_kind=kind, num_cores=1,
                                       platform="tpu")
  return jax.sharding.AbstractMesh((num_devices,), ("data",),
                                   abstract_device=device)


def lower_for_targets(jitted, *args, num_devices: int = 1) -> dict[str, str]:
  """{target: lowered StableHLO text} of `jitted(*args)` for `TARGETS`
  (`num_devices`: the size of the function's mesh, if it has one)."""
  with ops.kernel_platforms(("cuda", "tpu")):
    traced = jitted.trace(*args)
  lowered = {"cuda": traced.lower(lowering_platforms=("cuda",)).as_text()}
  for kind in TPU_KINDS:
    with jax.sharding.use_abstract_mesh(tpu_mesh(kind, num_devices)):
      lowered[kind] = traced.lower(lowering_platforms=("tpu",)).as_text()
  return lowered


def kernel_calls(target: str, text: str) -> int:
  """How many fused-kernel custom calls a lowered module makes."""
  return text.count(KERNEL_CALLS["cuda" if target == "cuda" else "tpu"])
