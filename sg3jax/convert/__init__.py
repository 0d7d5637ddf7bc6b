"""Official StyleGAN3 networks -> sg3jax: state dicts and safe pickles."""

from sg3jax.convert.generator import generator_from_kwargs
from sg3jax.convert.generator import generator_from_state_dict
from sg3jax.convert.state_dict import state_dict_from_variables
