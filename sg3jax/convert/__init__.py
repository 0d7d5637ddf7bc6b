"""Official StyleGAN3 networks -> sg3jax: state dicts and safe pickles."""

from sg3jax.convert.discriminator import discriminator_from_kwargs
from sg3jax.convert.discriminator import discriminator_from_state_dict
from sg3jax.convert.generator import generator_from_kwargs
from sg3jax.convert.generator import generator_from_state_dict
from sg3jax.convert.networks import build_module
from sg3jax.convert.networks import build_modules
from sg3jax.convert.networks import to_json_value
from sg3jax.convert.official import augment_pipe_settings
from sg3jax.convert.official import load_official_pickle
from sg3jax.convert.pickle_reader import read_network_pickle
from sg3jax.convert.pickle_reader import UnsafePickleError
from sg3jax.convert.state_dict import state_dict_from_variables
