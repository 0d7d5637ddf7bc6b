"""Flax Linen networks: the StyleGAN3 and StyleGAN2 generators and the
StyleGAN2 critic."""

from sg3jax.networks.generator import Generator
from sg3jax.networks.generator import StyleGAN2Generator
from sg3jax.networks.generator import synthesis_network
from sg3jax.networks.layers import FullyConnected
from sg3jax.networks.mapping import MappingNetwork
from sg3jax.networks.stylegan2 import Discriminator
from sg3jax.networks.synthesis import make_transform
from sg3jax.networks.synthesis import SynthesisInput
from sg3jax.networks.synthesis import SynthesisLayer
from sg3jax.networks.synthesis import SynthesisNetwork
