"""What the fromrgb weight gradient of the discriminator needs on a TPU
v5e chip, compiled by XLA TPU on compile-only devices (`.venv-aot`).

TPUs tile the two minor axes of an array by (8, 128). fromrgb, a 1x1
convolution of 3 channels, had its weight gradient lowered as a
convolution into [H, N*W/64, 64, O, 3] buffers padded along their 3-wide
minor axis (768 MiB each in the StyleGAN3-T 512² step at 4 per chip,
bfloat16), which put that step over the official 4.3 GiB per device.
`ops.conv2d` now computes 1x1 convolutions as products.
"""

import json
import subprocess

from absl.testing import absltest

from sg3jax import aot
from tests.kernels import test_compile

MIB = 2 ** 20

_SCRIPT = """
import json
import jax
import jax.numpy as jnp
from sg3jax import aot, ops

TARGET = "v5e:2x4"
one_chip = aot.single_device(TARGET)

def spec(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.bfloat16, sharding=one_chip)

def fromrgb_weight_grad(w, img):
  return jax.grad(lambda w: jnp.sum(
      ops.conv2d(img, w, (0, 0)).astype(jnp.float32) ** 2))(w)

result = aot.compile_for(TARGET, fromrgb_weight_grad, spec(1, 1, 3, 64),
                         spec(4, 512, 512, 3))
assert result.error is None, result.error
print(json.dumps({"fromrgb_weight_grad": result.temp_bytes}))
"""


class DiscriminatorLayoutTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    test_compile.require_compile_stack()
    result = subprocess.run([aot.aot_python(), "-c", _SCRIPT],
                            capture_output=True, text=True, check=False,
                            env=aot.worker_environment())
    if result.returncode:
      raise AssertionError(result.stderr[-3000:])
    cls.temp = json.loads(result.stdout.strip().splitlines()[-1])

  def test_fromrgb_weight_gradient_holds_only_its_output(self):
    # The gradient needs the conv's output [4, 512, 512, 64] bf16 (128 MiB)
    # and nothing of that size besides; as a convolution it took 256 MiB
    # here, and 768 MiB buffers inside the training step.
    output = 4 * 512 * 512 * 64 * 2
    self.assertLessEqual(self.temp["fromrgb_weight_grad"], 1.1 * output,
                         self.temp["fromrgb_weight_grad"] / MIB)


if __name__ == "__main__":
  absltest.main()
