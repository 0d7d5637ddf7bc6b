"""What two discriminator operations need on a TPU v5e chip, compiled by
XLA TPU on compile-only devices (`.venv-aot`).

TPUs tile the two minor axes of an array by (8, 128). Two operations of
the StyleGAN2 discriminator at 512² (batch 4, bfloat16) once held buffers
far larger than their data, which put the StyleGAN3-T 512² training step
over the official 4.3 GiB per device:
- the weight gradient of fromrgb, a 1x1 convolution of 3 channels, lowered
  as a convolution: [H, N*W/64, 64, O, 3] buffers padded along their
  3-wide minor axis (`ops.conv2d` now computes 1x1 convolutions as
  products);
- the blur-downsample of the skip connection (`upfirdn2d` down 2 with the
  4x4 filter): each of its 16 strided slices was a materialized
  quarter-size copy of the input (`upfirdn2d` now reads unit-stride slices
  of one plane per residue).
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
from sg3jax.networks import stylegan2

TARGET = "v5e:2x4"
one_chip = aot.single_device(TARGET)

def spec(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.bfloat16, sharding=one_chip)

def fromrgb_weight_grad(w, img):
  return jax.grad(lambda w: jnp.sum(
      ops.conv2d(img, w, (0, 0)).astype(jnp.float32) ** 2))(w)

def skip(x, w):
  return stylegan2._conv_down2(x, w, 1)

temp = {}
for name, fn, args in [
    ("fromrgb_weight_grad", fromrgb_weight_grad,
     (spec(1, 1, 3, 64), spec(4, 512, 512, 3))),
    ("skip", skip, (spec(4, 512, 512, 64), spec(1, 1, 64, 128)))]:
  result = aot.compile_for(TARGET, fn, *args)
  assert result.error is None, result.error
  temp[name] = result.temp_bytes
print(json.dumps(temp))
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

  def test_skip_downsample_holds_less_than_two_inputs(self):
    # Input [4, 512, 512, 64] bf16: 128 MiB. With strided slices the
    # forward took 609 MiB; with residue planes 241 MiB.
    image = 4 * 512 * 512 * 64 * 2
    self.assertLessEqual(self.temp["skip"], 2 * image,
                         self.temp["skip"] / MIB)


if __name__ == "__main__":
  absltest.main()
