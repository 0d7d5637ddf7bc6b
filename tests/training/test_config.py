"""Training configs: the official table, capacity rules, experiment files."""

from absl.testing import absltest
from absl.testing import parameterized

from sg3jax import convert
from sg3jax.training import config as config_lib
from tests.training import tiny


def _kwargs(c, res=256):
  shape = dict(resolution=res, channels=3, label_dim=0)
  return (config_lib.generator_kwargs(c, **shape),
          config_lib.discriminator_kwargs(c, **shape))


class ConfigTest(parameterized.TestCase):

  def test_official_t_defaults(self):
    c = config_lib.base_config("stylegan3-t")
    g, d = _kwargs(c)
    self.assertEqual((g["channel_base"], g["channel_max"], g["conv_kernel"],
                      g["use_radial_filters"]), (32768, 512, 3, False))
    self.assertEqual((d["channel_base"], d["channel_max"]), (32768, 512))
    self.assertEqual(g["mapping_kwargs"], {"num_layers": 2})
    self.assertAlmostEqual(g["magnitude_ema_beta"], 0.5 ** (32 / 20000))
    self.assertEqual((c.optim.G_lr, c.optim.D_lr, c.optim.betas),
                     (0.0025, 0.002, (0.0, 0.99)))
    self.assertEqual((c.optim.G_reg_interval, c.optim.D_reg_interval),
                     (None, 16))
    self.assertAlmostEqual(c.ema_kimg, 10.0)
    self.assertEqual(c.loss.blur_init_sigma, 0.0)

  def test_filter_schedule_options_are_generator_kwargs(self):
    c = config_lib.base_config("stylegan3-t")
    g, _ = _kwargs(c)
    names = ("first_cutoff", "first_stopband", "last_stopband_rel",
             "margin_size", "filter_size", "lrelu_upsampling")
    self.assertEqual(tuple(g[k] for k in names),
                     (2.0, 2 ** 2.1, 2 ** 0.3, 10, 6, 2))
    c.G.filter_size = 1
    c.G.margin_size = 0
    g, _ = _kwargs(c)
    G = convert.generator_from_kwargs(g)
    self.assertEqual((G.synthesis_kwargs["filter_size"],
                      G.synthesis_kwargs["margin_size"]), (1, 0))

  def test_r_doubles_g_capacity_and_fades_blur(self):
    c = config_lib.base_config("stylegan3-r")
    c.batch_size = 64
    g, d = _kwargs(c)
    self.assertEqual((g["channel_base"], g["channel_max"], g["conv_kernel"],
                      g["use_radial_filters"]), (65536, 1024, 1, True))
    self.assertEqual((d["channel_base"], d["channel_max"]), (32768, 512))
    self.assertEqual(c.loss.blur_init_sigma, 10.0)
    # Derived values follow the batch size, as official train.py sets them.
    self.assertAlmostEqual(c.loss.blur_fade_kimg, 64 * 200 / 32)
    self.assertAlmostEqual(c.ema_kimg, 20.0)
    self.assertAlmostEqual(g["magnitude_ema_beta"], 0.5 ** (64 / 20000))

  def test_resume_changes_schedules_as_official_resume(self):
    c = config_lib.base_config("stylegan3-r")
    self.assertIs(config_lib.with_resume_settings(c), c)
    c.resume = "snapshot.pkl"
    c.batch_size = 64
    used = config_lib.with_resume_settings(c)
    self.assertEqual((used.augment.kimg, used.ema_rampup,
                      used.loss.blur_init_sigma), (100.0, None, 0.0))
    self.assertAlmostEqual(used.ema_kimg, 20.0)
    self.assertAlmostEqual(used.loss.blur_fade_kimg, 400.0)
    self.assertEqual((c.augment.kimg, c.ema_rampup, c.loss.blur_init_sigma),
                     (500.0, 0.05, 10.0))
    c.resume_settings = False
    self.assertIs(config_lib.with_resume_settings(c), c)

  def test_stylegan2_defaults_and_table(self):
    c = config_lib.base_config("stylegan2")
    g, _ = _kwargs(c)
    self.assertEqual(config_lib.generator_class(c), "StyleGAN2Generator")
    self.assertEqual(g["mapping_kwargs"], {"num_layers": 8})
    self.assertEqual(g["fused_modconv_default"], "inference_only")
    self.assertNotIn("magnitude_ema_beta", g)
    self.assertEqual((c.optim.G_lr, c.optim.G_reg_interval,
                      c.loss.style_mixing_prob, c.loss.pl_weight),
                     (0.002, 4, 0.9, 2.0))
    G = convert.generator_from_kwargs(
        g, class_name=config_lib.generator_class(c),
        **config_lib.generator_overrides(c))
    self.assertEqual(type(G).__name__, "StyleGAN2Generator")
    # docs/configs.md StyleGAN2-ADA defaults: 256 on 4 GPUs, 1024 on 8.
    c = tiny.load_experiment("stylegan2.py", "256,4")
    self.assertEqual((c.batch_size, c.batch_gpu, c.loss.r1_gamma, c.cbase,
                      c.optim.G_lr, c.optim.D_lr, c.G.map_depth),
                     (64, 16, 0.2048, 16384, 0.0025, 0.0025, 2))
    # Its rows give no --snap (official default 50), unlike StyleGAN3's.
    c = tiny.load_experiment("stylegan2.py", "512,1")
    self.assertEqual(c.snapshot_ticks, 50)
    c = tiny.load_experiment("stylegan2.py", "1024")
    self.assertEqual((c.batch_size, c.batch_gpu, c.loss.r1_gamma, c.cbase,
                      c.optim.G_lr), (32, 4, 6.5536, 32768, 0.002))
    with self.assertRaisesRegex(ValueError, r"stylegan2 \(resolution, gpus\)"
                                r": expected one of .*got \(128, 8\)"):
      tiny.load_experiment("stylegan2.py", "128,8")

  def test_overrides_do_not_leak_between_fields(self):
    c = config_lib.base_config("stylegan3-t")
    c.G.channel_base = 1024
    c.image_snapshot_ticks = 7
    g, d = _kwargs(c)
    self.assertEqual((g["channel_base"], d["channel_base"]), (1024, 32768))
    self.assertEqual((c.snapshot_ticks, c.image_snapshot_ticks), (50, 7))
    c.ema_kimg = 1.5
    self.assertEqual(c.batch_size, 32)

  @parameterized.parameters(
      ("stylegan3_t.py", "128,1", 0.5, 16, 10),
      ("stylegan3_t.py", "512,2", 8.0, 8, 20),
      ("stylegan3_t.py", "1024,4", 32.0, 4, 20),
      ("stylegan3_r.py", "256,1", 2.0, 8, 10),
      ("stylegan3_r.py", "512,8", 8.0, 4, 50),
      ("stylegan3_t.py", "256", 2.0, 4, 50),
      ("stylegan3_r.py", None, 2.0, 4, 50),
  )
  def test_experiment_files_follow_the_official_table(
      self, name, arg, gamma, batch_gpu, snap):
    c = tiny.load_experiment(name, arg)
    self.assertEqual((c.loss.r1_gamma, c.batch_gpu, c.snapshot_ticks,
                      c.batch_size), (gamma, batch_gpu, snap, 32))
    self.assertEqual(c.data, "")  # must be given
    self.assertEqual(c.cfg, "stylegan3-" + name[-4])
    # Official fp16 (bf16 here) and recomputation: the official memory.
    self.assertTrue(c.mixed_precision)
    self.assertTrue(c.remat)
    # Only R 512² keeps every second synthesis layer's input (see
    # OFFICIAL_REMAT_GROUP_SIZE).
    self.assertEqual(c.G.remat_group_size,
                     2 if (name, arg) == ("stylegan3_r.py", "512,8") else 1)

  def test_official_gpu_mem(self):
    self.assertEqual(config_lib.official_gpu_mem_gib("stylegan3-t", 256, 8),
                     3.1)
    self.assertEqual(config_lib.official_gpu_mem_gib("stylegan3-r", 1024, 1),
                     10.2)
    with self.assertRaisesRegex(ValueError, "no row for stylegan3-t 384² on "
                                "8 GPUs"):
      config_lib.official_gpu_mem_gib("stylegan3-t", 384, 8)
    with self.assertRaisesRegex(ValueError, "on 3 GPUs"):
      config_lib.official_gpu_mem_gib("stylegan3-r", 256, 3)

  def test_bad_table_arguments(self):
    with self.assertRaisesRegex(ValueError, "RES or RES,GPUS"):
      config_lib.parse_table_arg("big")
    with self.assertRaisesRegex(ValueError, "resolution: expected one of"):
      config_lib.recommended("stylegan3-t", 300, 8)
    with self.assertRaisesRegex(ValueError, "gpus: expected"):
      config_lib.recommended("stylegan3-t", 256, 3)
    with self.assertRaisesRegex(ValueError, "cfg: expected"):
      config_lib.base_config("stylegan4")

  def test_remat_reaches_g_synthesis_and_is_refused_for_stylegan2(self):
    c = config_lib.base_config("stylegan3-r")
    c.remat = True
    G = convert.generator_from_kwargs(
        _kwargs(c)[0], **config_lib.generator_overrides(c))
    self.assertTrue(G.synthesis_kwargs["remat"])
    self.assertEqual(G.synthesis_kwargs["remat_group_size"], 1)
    c.G.remat_group_size = 3
    G = convert.generator_from_kwargs(
        _kwargs(c)[0], **config_lib.generator_overrides(c))
    self.assertEqual(G.synthesis_kwargs["remat_group_size"], 3)
    c = config_lib.base_config("stylegan2")
    c.remat = True
    with self.assertRaisesRegex(ValueError, "remat: only the StyleGAN3"):
      config_lib.generator_overrides(c)

  def test_quickstart_trains_on_the_demo_dataset(self):
    c = tiny.load_experiment("quickstart.py")
    self.assertTrue(c.data.startswith("demo"))
    self.assertLessEqual(c.total_kimg, 5)


if __name__ == "__main__":
  absltest.main()
