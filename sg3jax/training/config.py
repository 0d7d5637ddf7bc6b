"""Training configuration: the ml-collections schema and the official table.

`base_config(cfg)` holds every option with the official train.py defaults
for "stylegan3-t", "stylegan3-r" or "stylegan2"; experiment files in
`experiments/` start from it. `recommended(cfg, resolution, gpus)` applies
a row of the official docs/configs.md tables. `generator_kwargs` /
`discriminator_kwargs` turn a config into the official network init kwargs.
"""

from typing import Any

import ml_collections
from ml_collections import config_dict

from sg3jax.resolution import Resolution

CONFIGS = ("stylegan3-t", "stylegan3-r", "stylegan2")

# docs/configs.md, "Recommended configurations": R1 gamma by resolution,
# and --batch-gpu / --snap by (config, resolution, GPU count); batch 32.
OFFICIAL_GAMMA = {128: 0.5, 256: 2.0, 512: 8.0, 1024: 32.0}
OFFICIAL_BATCH_GPU = {
    ("stylegan3-t", 128, 1): 16, ("stylegan3-t", 256, 1): 16,
    ("stylegan3-t", 512, 1): 8, ("stylegan3-t", 512, 2): 8,
    ("stylegan3-t", 1024, 1): 4, ("stylegan3-t", 1024, 2): 4,
    ("stylegan3-t", 1024, 4): 4,
    ("stylegan3-r", 128, 1): 16, ("stylegan3-r", 256, 1): 8,
    ("stylegan3-r", 256, 2): 8, ("stylegan3-r", 512, 1): 4,
    ("stylegan3-r", 512, 2): 4, ("stylegan3-r", 512, 4): 4,
    ("stylegan3-r", 1024, 1): 4, ("stylegan3-r", 1024, 2): 4,
    ("stylegan3-r", 1024, 4): 4,
}
# docs/configs.md, "Old StyleGAN2-ADA configurations", default table:
# (resolution, GPUs) -> batch, R1 gamma, G/D lr, cbase (all map-depth 2).
OFFICIAL_STYLEGAN2 = {
    (128, 1): (32, 0.1024, 0.0025, 16384),
    (128, 2): (64, 0.0512, 0.0025, 16384),
    (128, 4): (64, 0.0512, 0.0025, 16384),
    (256, 1): (16, 0.8192, 0.0025, 16384),
    (256, 2): (32, 0.4096, 0.0025, 16384),
    (256, 4): (64, 0.2048, 0.0025, 16384),
    (256, 8): (64, 0.2048, 0.0025, 16384),
    (512, 1): (8, 6.5536, 0.0025, 32768),
    (512, 2): (16, 3.2768, 0.0025, 32768),
    (512, 4): (32, 1.6384, 0.0025, 32768),
    (512, 8): (64, 0.8192, 0.0025, 32768),
    (1024, 1): (4, 52.4288, 0.002, 32768),
    (1024, 2): (8, 26.2144, 0.002, 32768),
    (1024, 4): (16, 13.1072, 0.002, 32768),
    (1024, 8): (32, 6.5536, 0.002, 32768),
}
OFFICIAL_SNAP = {(128, 1): 10, (128, 2): 20, (256, 1): 10, (256, 2): 20,
                 (512, 1): 10, (512, 2): 20, (1024, 1): 5, (1024, 2): 10,
                 (1024, 4): 20}
# docs/configs.md, "Recommended configurations", "GPU mem": the most memory a
# GPU held in training (torch.cuda.max_memory_allocated, GiB), per
# (cfg, resolution) for 1, 2, 4 and 8 GPUs: what a device may need at most.
OFFICIAL_GPU_MEM_GIB = {
    ("stylegan3-t", 128): (7.2, 7.1, 4.1, 2.6),
    ("stylegan3-t", 256): (9.5, 9.3, 5.2, 3.1),
    ("stylegan3-t", 512): (7.8, 7.7, 7.6, 4.3),
    ("stylegan3-t", 1024): (7.0, 6.8, 6.7, 6.6),
    ("stylegan3-r", 128): (8.3, 8.2, 4.5, 2.7),
    ("stylegan3-r", 256): (6.7, 6.7, 6.6, 3.7),
    ("stylegan3-r", 512): (6.0, 6.0, 5.9, 5.9),
    ("stylegan3-r", 1024): (10.2, 10.1, 10.0, 9.9),
}


def base_config(cfg: str = "stylegan3-t") -> ml_collections.ConfigDict:
  """Every training option, with official train.py defaults for `cfg`."""
  if cfg not in CONFIGS:
    raise ValueError(f"cfg: expected one of {CONFIGS}, got {cfg!r}")
  c = ml_collections.ConfigDict()
  c.cfg = cfg
  # Data: a folder, an uncompressed zip, tfds:<dir>[:split] or demo[:res].
  c.data = "demo:32"
  # None: the dataset's; N or "HxW" (e.g. "256x512", see sg3jax.resolution:
  # the short side a power of two, the long side a multiple of a quarter
  # of it); the dataset's images must have that size.
  c.resolution = config_dict.placeholder(object)
  c.mirror = False
  c.use_labels = False
  c.max_size = config_dict.placeholder(int)
  c.data_threads = 16

  c.batch_size = 32  # global, all devices and accumulation rounds
  c.batch_gpu = 0  # per-device micro-batch; 0 = batch_size / devices
  c.total_kimg = 25000.0
  c.tick_kimg = 4.0  # a stats line every tick (official --tick)
  c.snapshot_ticks = 50  # a checkpoint every N ticks (official --snap)
  # Image grids every N ticks; None = with the checkpoints (official).
  c.image_snapshot_ticks = config_dict.placeholder(int)
  c.max_checkpoints = 3  # checkpoints kept in workdir/checkpoints
  # Metrics of G_ema at every checkpoint (official --metrics, whose default
  # is fid50k_full): comma-separated names from sg3jax.metrics, "" = none;
  # see sg3jax/metrics/training_metrics.py. None: the official counts.
  c.metrics = ""
  c.metrics_num = config_dict.placeholder(int)
  c.detector_dir = ""  # "": $SG3JAX_DETECTORS
  c.grid = ()  # (columns, rows) of the image grids; () = official size
  c.seed = 0
  # An sg3jax run directory, network checkpoint or official .pkl to start
  # from (transfer learning); a workdir's own checkpoint always wins.
  c.resume = ""
  # With `resume`, change the schedules as official --resume does (see
  # `with_resume_settings`); False keeps the values below.
  c.resume_settings = True
  c.ema_kimg = c.get_ref("batch_size").to_float() * 10 / 32
  c.ema_rampup = config_dict.placeholder(float)
  c.ema_rampup = 0.05

  c.G = ml_collections.ConfigDict()
  c.G.z_dim = 512
  c.G.w_dim = 512
  c.G.map_depth = 2
  # Capacity as the official --cbase/--cmax: G and D use them (config R
  # doubles G's); set G.channel_base etc. to decouple.
  c.cbase = 32768
  c.cmax = 512
  c.G.channel_base = config_dict.placeholder(int)
  c.G.channel_max = config_dict.placeholder(int)
  c.G.num_layers = 14
  c.G.num_fp16_res = 4
  c.G.conv_clamp = config_dict.placeholder(float)
  c.G.conv_clamp = 256.0
  c.G.conv_kernel = 3
  c.G.use_radial_filters = False
  # The filter schedule and layer filters (official SynthesisNetwork /
  # SynthesisLayer kwargs; the ablation sweeps vary them).
  c.G.first_cutoff = 2.0
  c.G.first_stopband = 2 ** 2.1
  c.G.last_stopband_rel = 2 ** 0.3
  c.G.margin_size = 10
  c.G.filter_size = 6
  c.G.lrelu_upsampling = 2
  # None: the official 0.5 ** (batch_size / 20000).
  c.G.magnitude_ema_beta = config_dict.placeholder(float)
  c.G.filter_design = "kaiser"
  c.G.filtered_lrelu_impl = "auto"
  # With remat: G's backward keeps the input of every group of this many
  # consecutive synthesis layers instead of every layer's, and computes
  # each group once more (see SynthesisNetwork.remat_group_size).
  c.G.remat_group_size = 1

  c.D = ml_collections.ConfigDict()
  c.D.channel_base = config_dict.placeholder(int)
  c.D.channel_max = config_dict.placeholder(int)
  c.D.mbstd_group_size = 4
  c.D.freeze_layers = 0  # official --freezed (Freeze-D)
  c.D.num_fp16_res = 4
  c.D.conv_clamp = config_dict.placeholder(float)
  c.D.conv_clamp = 256.0
  # bf16 compute in the num_fp16_res highest resolutions (official fp16).
  c.mixed_precision = False
  # Recompute G's synthesis layers and D's blocks in the backward pass
  # instead of keeping their intermediates: less memory per device (see
  # `sg3jax plan`), one more forward of each. StyleGAN3 configs.
  c.remat = False

  c.loss = ml_collections.ConfigDict()
  c.loss.r1_gamma = 2.0
  c.loss.style_mixing_prob = 0.0
  c.loss.pl_weight = 0.0
  c.loss.pl_batch_shrink = 2
  c.loss.pl_decay = 0.01
  c.loss.blur_init_sigma = 0.0
  c.loss.blur_fade_kimg = 0.0

  # Augmentation of D's inputs (official --aug / --p / --target): "ada"
  # (p adapts to hold E[sign(D(reals))] at `target`), "fixed" (p stays at
  # `p`) or "noaug"; `pipe` names an official pipeline ("bgc" as
  # StyleGAN3's train.py; see sg3jax/training/augment.py).
  c.augment = ml_collections.ConfigDict()
  c.augment.mode = "ada"
  c.augment.pipe = "bgc"
  c.augment.p = config_dict.placeholder(float)  # None: 0.2 fixed, 0 ADA
  c.augment.target = 0.6
  c.augment.interval = 4  # iterations between ADA adjustments
  c.augment.kimg = 500.0  # kimg for p to move by 1

  c.optim = ml_collections.ConfigDict()
  c.optim.G_lr = 0.0025
  c.optim.D_lr = 0.002
  c.optim.betas = (0.0, 0.99)
  c.optim.eps = 1e-8
  c.optim.G_reg_interval = config_dict.placeholder(int)
  c.optim.D_reg_interval = config_dict.placeholder(int)
  c.optim.D_reg_interval = 16

  if cfg == "stylegan2":
    # Official train.py --cfg=stylegan2: 8 mapping layers, style mixing,
    # path length with lazy G regularization, G lr 0.002. The StyleGAN3
    # synthesis options above (layers, filters, conv_kernel) do not apply.
    c.G.map_depth = 8
    c.optim.G_lr = 0.002
    c.optim.G_reg_interval = 4
    c.loss.style_mixing_prob = 0.9
    c.loss.pl_weight = 2.0
  if cfg == "stylegan3-r":
    c.G.conv_kernel = 1
    c.G.use_radial_filters = True
    c.loss.blur_init_sigma = 10.0
    c.loss.blur_fade_kimg = c.get_ref("batch_size").to_float() * 200 / 32
  return c


# Rows whose G main needs more than the official GPU mem on a TPU chip when
# G's backward keeps every synthesis layer's input (`sg3jax plan`,
# v5e:2x4, StyleGAN3-R 512²: 5.93 GiB, official 5.9); keeping every second
# one: 4.69 GiB for G main.
OFFICIAL_REMAT_GROUP_SIZE = {("stylegan3-r", 512): 2}


def recommended(cfg: str, resolution: int, gpus: int
                ) -> ml_collections.ConfigDict:
  """`base_config(cfg)` with a docs/configs.md row applied."""
  if cfg == "stylegan2":
    return _recommended_stylegan2(resolution, gpus)
  if resolution not in OFFICIAL_GAMMA:
    raise ValueError(f"resolution: expected one of {sorted(OFFICIAL_GAMMA)}, "
                     f"got {resolution}")
  if gpus not in (1, 2, 4, 8):
    raise ValueError(f"gpus: expected 1, 2, 4 or 8, got {gpus}")
  c = base_config(cfg)
  c.data = ""  # required: --config.data=...
  c.resolution = resolution
  c.loss.r1_gamma = OFFICIAL_GAMMA[resolution]
  c.batch_size = 32
  c.batch_gpu = OFFICIAL_BATCH_GPU.get((cfg, resolution, gpus), 32 // gpus)
  c.snapshot_ticks = OFFICIAL_SNAP.get((resolution, gpus), 50)
  # The official runs compute the 4 highest resolutions in fp16 (train.py
  # without --fp32); bf16 here. Recomputing G's layers and D's blocks in
  # the backward pass keeps a device within the official GPU memory.
  c.mixed_precision = True
  c.remat = True
  c.G.remat_group_size = OFFICIAL_REMAT_GROUP_SIZE.get((cfg, resolution), 1)
  return c


def official_gpu_mem_gib(cfg: str, resolution: int, gpus: int) -> float:
  """The official "GPU mem" of a recommended row (`OFFICIAL_GPU_MEM_GIB`).

  Raises:
    ValueError: for a row the official table does not have.
  """
  if (cfg, resolution) not in OFFICIAL_GPU_MEM_GIB or gpus not in (1, 2, 4,
                                                                    8):
    raise ValueError(f"official GPU mem: no row for {cfg} {resolution}² on "
                     f"{gpus} GPUs (the table has {sorted(OFFICIAL_GPU_MEM_GIB)}"
                     f" on 1, 2, 4 or 8)")
  return OFFICIAL_GPU_MEM_GIB[(cfg, resolution)][(1, 2, 4, 8).index(gpus)]


def _recommended_stylegan2(resolution: int, gpus: int
                           ) -> ml_collections.ConfigDict:
  """The StyleGAN2-ADA default-configuration row (map depth 2)."""
  if (resolution, gpus) not in OFFICIAL_STYLEGAN2:
    raise ValueError(f"stylegan2 (resolution, gpus): expected one of "
                     f"{sorted(OFFICIAL_STYLEGAN2)}, got {(resolution, gpus)}")
  batch, gamma, lr, cbase = OFFICIAL_STYLEGAN2[(resolution, gpus)]
  c = base_config("stylegan2")
  c.data = ""  # required: --config.data=...
  c.resolution = resolution
  c.batch_size = batch
  c.batch_gpu = batch // gpus
  c.loss.r1_gamma = gamma
  c.optim.G_lr = c.optim.D_lr = lr
  c.cbase = cbase
  c.G.map_depth = 2
  # These rows give no --snap: snapshot_ticks keeps the official 50.
  return c


def with_resume_settings(c: ml_collections.ConfigDict
                         ) -> ml_collections.ConfigDict:
  """The config a run uses: `c`, or with `c.resume` and
  `c.resume_settings` a copy changed as official train.py --resume
  changes it: ADA reacts faster (augment.kimg 100), no EMA ramp-up
  (ema_rampup None), no blur fade-in (loss.blur_init_sigma 0)."""
  if not (c.resume and c.resume_settings):
    return c
  c = c.copy_and_resolve_references()
  c.augment.kimg = 100.0
  c.ema_rampup = None
  c.loss.blur_init_sigma = 0.0
  return c


def parse_table_arg(arg: str | None) -> tuple[int, int]:
  """"256" or "256,8" (resolution[, gpus]) from `--config=file.py:ARG`."""
  if not arg:
    return 256, 8
  try:
    parts = [int(p) for p in arg.split(",")]
  except ValueError:
    parts = []
  if len(parts) not in (1, 2):
    raise ValueError(f"config argument: expected RES or RES,GPUS (e.g. "
                     f"'256,8'), got {arg!r}")
  return parts[0], parts[1] if len(parts) == 2 else 8


def _capacity(c: ml_collections.ConfigDict, value: int | None,
              official: int) -> int:
  """G's channel_base/max: explicit, else the official (x2 for config R)."""
  if value is not None:
    return value
  return official * 2 if c.cfg == "stylegan3-r" else official


def generator_class(c: ml_collections.ConfigDict) -> str:
  """The sg3jax generator class of a config (`convert.GENERATOR_CLASSES`)."""
  return "StyleGAN2Generator" if c.cfg == "stylegan2" else "Generator"


def generator_kwargs(c: ml_collections.ConfigDict, *,
                     resolution: Resolution,
                     channels: int, label_dim: int) -> dict[str, Any]:
  """Official Generator init kwargs for a config and dataset."""
  common = dict(
      z_dim=c.G.z_dim, c_dim=label_dim, w_dim=c.G.w_dim,
      img_resolution=resolution, img_channels=channels,
      mapping_kwargs=dict(num_layers=c.G.map_depth),
      channel_base=_capacity(c, c.G.channel_base, c.cbase),
      channel_max=_capacity(c, c.G.channel_max, c.cmax),
      num_fp16_res=c.G.num_fp16_res, conv_clamp=c.G.conv_clamp)
  if c.cfg == "stylegan2":
    return dict(common, fused_modconv_default="inference_only")
  return dict(
      common, num_layers=c.G.num_layers, conv_kernel=c.G.conv_kernel,
      use_radial_filters=c.G.use_radial_filters,
      first_cutoff=c.G.first_cutoff, first_stopband=c.G.first_stopband,
      last_stopband_rel=c.G.last_stopband_rel, margin_size=c.G.margin_size,
      filter_size=c.G.filter_size, lrelu_upsampling=c.G.lrelu_upsampling,
      magnitude_ema_beta=(0.5 ** (c.batch_size / 20000)
                          if c.G.magnitude_ema_beta is None
                          else c.G.magnitude_ema_beta))


def generator_overrides(c: ml_collections.ConfigDict) -> dict[str, Any]:
  """sg3jax-only synthesis options (not part of the official kwargs)."""
  if c.cfg == "stylegan2":
    if c.remat:
      raise ValueError("remat: only the StyleGAN3 configs recompute layers; "
                       "got remat=True with cfg stylegan2")
    return dict(mixed_precision=c.mixed_precision)
  return dict(filter_design=c.G.filter_design,
              filtered_lrelu_impl=c.G.filtered_lrelu_impl,
              mixed_precision=c.mixed_precision, remat=c.remat,
              remat_group_size=c.G.remat_group_size)


def discriminator_kwargs(c: ml_collections.ConfigDict, *,
                         resolution: Resolution,
                         channels: int, label_dim: int) -> dict[str, Any]:
  """Official Discriminator init kwargs for a config and dataset."""
  return dict(
      c_dim=label_dim, img_resolution=resolution, img_channels=channels,
      channel_base=(c.cbase if c.D.channel_base is None
                    else c.D.channel_base),
      channel_max=c.cmax if c.D.channel_max is None else c.D.channel_max,
      num_fp16_res=c.D.num_fp16_res, conv_clamp=c.D.conv_clamp,
      block_kwargs=dict(freeze_layers=c.D.freeze_layers), mapping_kwargs={},
      epilogue_kwargs=dict(mbstd_group_size=c.D.mbstd_group_size))
