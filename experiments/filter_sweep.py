"""Filter-design ablation sweep: equivariance of StyleGAN3-T variants.

    sg3jax sweep --config=experiments/filter_sweep.py --workdir=out/sweep
    sg3jax sweep --config=experiments/filter_sweep.py:tiny --workdir=out/t
    sg3jax sweep --config=experiments/filter_sweep.py \\
        --config.only=baseline,no_filter --config.train_kimg=0 ...

Each variant changes one thing of the base (the CPU quickstart network,
32x32 demo shapes, 8 layers) or, for `config_r_layers`, the two things
that make config R's layers. EQ-T, EQ-T_frac and EQ-R are measured on the
fresh networks and on G_ema after `train_kimg` of training; see
`sg3jax.analysis.sweep` for the outputs. `:tiny` is the CI version (16x16,
4 layers, three variants, a few samples).

Any base option can be changed for all variants
(`--config.base.G.num_layers=10`), the sample count with
`--config.eq_num`, and a variant list with `--config.only`. Other
registered metrics can be measured too
(`--config.metrics=eqt50k_frac,fid50k_full`): those with a detector use
the base config's `data` and `detector_dir`.
"""

import importlib.util
import pathlib

import ml_collections

# (name, changes to the base config), in table order.
FILTER_VARIANTS = (
    ("baseline", ""),
    ("lanczos", "G.filter_design=lanczos"),
    ("first_cutoff_1", "G.first_cutoff=1.0"),
    ("first_stopband_2^1.5", "G.first_stopband=2.8284271247461903"),
    ("last_stopband_rel_2^0.1", "G.last_stopband_rel=1.0717734625362931"),
    ("margin_0", "G.margin_size=0"),
    ("filter_size_4", "G.filter_size=4"),
    ("no_filter", "G.filter_size=1"),
    ("no_lrelu_upsampling", "G.lrelu_upsampling=1"),
    ("radial", "G.use_radial_filters=True"),
    ("conv_kernel_1", "G.conv_kernel=1"),
    ("config_r_layers", "G.conv_kernel=1, G.use_radial_filters=True"),
)


def _experiment(filename: str) -> ml_collections.ConfigDict:
  """`get_config()` of another file in experiments/."""
  path = pathlib.Path(__file__).with_name(filename)
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """"" (default): the full sweep; "tiny": the CI version."""
  if arg not in (None, "", "tiny"):
    raise ValueError(f"config argument: expected nothing or 'tiny', got "
                     f"{arg!r}")
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.metrics = ("eqt50k_int", "eqt50k_frac", "eqr50k")
  c.only = ""
  if arg == "tiny":
    c.base = _experiment("tiny.py")
    c.base.snapshot_ticks = 100
    c.variants = (FILTER_VARIANTS[0], ("no_filter", "G.filter_size=1"),
                  ("config_r_layers",
                   "G.conv_kernel=1, G.use_radial_filters=True"))
    # Two iterations (a preemption notice can stop a run after the first),
    # both with R1: one step program.
    c.train_kimg = 0.016
    c.base.optim.D_reg_interval = 1
    c.eq_num = 8
    c.eq_batch = 8
  else:
    c.base = _experiment("quickstart.py")
    c.base.tick_kimg = 0.5
    c.base.snapshot_ticks = 100
    c.base.image_snapshot_ticks = 100
    c.variants = FILTER_VARIANTS
    c.train_kimg = 1.0
    c.eq_num = 512
    c.eq_batch = 32
  return c
