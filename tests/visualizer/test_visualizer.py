"""The visualizer: frames against direct G.apply renders, no recompilation
when sliders move, and the page driven in headless Chromium (Selenium)."""

import base64
import io
import os
import pathlib
import shutil
import tempfile

import numpy as np
import portpicker
from absl.testing import absltest
from PIL import Image
from selenium.webdriver.support import select
from selenium.webdriver.support import ui

from sg3jax import analysis
from sg3jax import visualizer
from sg3jax.visualizer import browser
from tests.analysis import tiny
from tests.networks import test_stylegan2_generator


def direct_image(seed: int, translate=(0.0, 0.0), rotate: float = 0.0
                 ) -> np.ndarray:
  """uint8 `[H, W, 3]` of the tiny generator through analysis (G.apply)."""
  module, variables = tiny.generator()
  ws = analysis.map_latents(variables, analysis.seed_latents([seed], 8),
                            np.zeros((1, 0), np.float32), module=module)
  transform = analysis.input_transform(translate, np.deg2rad(rotate))
  return analysis.to_uint8(analysis.render_ws(
      module, variables, ws, transform=transform, batch_size=1))[0]


class RendererTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.renderer = visualizer.Renderer(*tiny.generator())

  def test_frames_match_g_apply_and_translate_moves_content(self):
    frame = self.renderer.frame(visualizer.View(), visualizer.Controls(
        seed=3, translate=(0.25, 0.0)))
    np.testing.assert_array_equal(frame, direct_image(3, (0.25, 0.0)))
    still = self.renderer.frame(visualizer.View(),
                                visualizer.Controls(seed=3))
    # 0.25 of 16 pixels: content 4 pixels to the right (interior only).
    moved = np.abs(frame[2:14, 6:14].astype(int) - still[2:14, 2:10]).mean()
    unmoved = np.abs(frame[2:14, 6:14].astype(int) - still[2:14, 6:14]
                     ).mean()
    self.assertLess(moved, unmoved / 10)

  def test_sliders_never_recompile(self):
    view = visualizer.View()
    self.renderer.frame(view, visualizer.Controls())
    traces = self.renderer.traces
    for i, seed in enumerate((0.0, 0.3, 1.7, 42.5)):
      self.renderer.frame(view, visualizer.Controls(
          seed=seed, psi=0.5 + i / 4, cutoff=i + 1, mix_seed=i,
          mix_layers=tuple(range(i)), translate=(i / 10, -i / 7),
          rotate=10.0 * i, channel=i, gain_db=i, fft_range_db=40 + i))
    self.assertEqual(self.renderer.traces, traces)
    layer = visualizer.View(layer="L2_20_6")
    for channel in (0, 3, 5):
      image = self.renderer.frame(layer, visualizer.Controls(channel=channel))
      self.assertEqual(image.shape, (20, 20, 3))
    self.assertEqual(self.renderer.traces, traces + 1)

  def test_seed_between_integers_interpolates_ws(self):
    module, variables = tiny.generator()
    ws = np.asarray(analysis.map_latents(
        variables, analysis.seed_latents([7, 8], 8),
        np.zeros((2, 0), np.float32), module=module))
    mid = 0.3 * ws[0] + 0.7 * ws[1]  # seed 7.7 (float32: tolerance)
    expected = analysis.to_uint8(analysis.render_ws(module, variables,
                                                    mid[None],
                                                    batch_size=1))[0]
    frame = self.renderer.frame(visualizer.View(),
                                visualizer.Controls(seed=7.7))
    self.assertLessEqual(np.abs(frame.astype(int) - expected).max(), 1)

  def test_fft_and_eq_views(self):
    fft = self.renderer.frame(visualizer.View(mode="fft"),
                              visualizer.Controls(seed=1))
    self.assertEqual(fft[8, 8, 0], 255)  # DC (centred) is the maximum
    eq = self.renderer.frame(visualizer.View(mode="eq"), visualizer.Controls(
        seed=1, translate=(0.125, 0.0)))
    # Moved back left by 2 pixels: the right edge is outside the mask.
    self.assertTrue(np.all(eq[:, -4:] == [64, 0, 0]))
    self.assertLess(eq[3:14, 1:12].max(), 8)  # an equivariant generator

  def test_bad_controls_are_named(self):
    with self.assertRaisesRegex(ValueError, "layer: expected output or"):
      self.renderer.frame(visualizer.View(layer="L9"), visualizer.Controls())
    with self.assertRaisesRegex(ValueError, r"mix_layers: expected .*\[6\]"):
      self.renderer.frame(visualizer.View(),
                          visualizer.Controls(mix_layers=(6,)))
    with self.assertRaisesRegex(ValueError, "unconditional"):
      self.renderer.frame(visualizer.View(),
                          visualizer.Controls(class_idx=1))
    module, variables, _, _ = test_stylegan2_generator._converted("orig")
    with self.assertRaisesRegex(ValueError, "StyleGAN3"):
      visualizer.Renderer(module, variables)


class SessionTest(absltest.TestCase):

  def test_run_steps_and_unreadable_networks(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    for name in ("33", "1", "5.orbax-checkpoint-tmp-0"):
      (root / "checkpoints" / name).mkdir(parents=True)
    self.assertEqual(visualizer.server.run_steps(root), [1, 33])
    self.assertEqual(visualizer.server.run_steps(root / "checkpoints"), [])
    session = visualizer.Session(str(root / "missing.pkl"))
    info = session.info()
    self.assertIsNone(info["network"])
    self.assertIn("missing.pkl", info["error"])

  def test_another_checkpoint_of_the_same_network_keeps_compilations(self):
    path = str(tiny.checkpoint_dir())
    session = visualizer.Session(path)
    view, controls = visualizer.View(), visualizer.Controls(seed=2)
    first = session.renderer.frame(view, controls)
    traces = session.renderer.traces
    session.load(path)
    np.testing.assert_array_equal(session.renderer.frame(view, controls),
                                  first)
    self.assertEqual(session.renderer.traces, traces)

  def test_query_parsing_names_bad_values(self):
    view, controls = visualizer.server.parse_query({
        "seed": "2.5", "mix_layers": "0,3", "tx": "0.1", "rotate": "5",
        "mode": "eq", "class": "2"})
    self.assertEqual(view, visualizer.View(mode="eq", rotated=True))
    self.assertEqual((controls.seed, controls.mix_layers, controls.translate,
                      controls.class_idx), (2.5, (0, 3), (0.1, 0.0), 2))
    with self.assertRaisesRegex(ValueError, "psi: expected a float, got 'x'"):
      visualizer.server.parse_query({"psi": "x"})
    with self.assertRaisesRegex(ValueError, "mix_layers: expected"):
      visualizer.server.parse_query({"mix_layers": "a"})


# Skipped only outside CI: .ci/run installs Chromium, so CI never skips.
@absltest.skipIf(None in browser.chromium_paths() and not os.environ.get("CI"),
                 "needs Debian's chromium and chromium-driver (.ci/run "
                 "installs them)")
class BrowserTest(absltest.TestCase):
  """Drives the page as a user would; screenshots go to
  $SG3JAX_SCREENSHOTS (default: a temporary directory)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = pathlib.Path(tempfile.mkdtemp())
    cls.addClassCleanup(shutil.rmtree, cls.tmp)
    cls.shots = pathlib.Path(os.environ.get("SG3JAX_SCREENSHOTS",
                                            cls.tmp / "shots"))
    cls.shots.mkdir(parents=True, exist_ok=True)
    cls.session = visualizer.Session(str(tiny.checkpoint_dir()))
    port = portpicker.pick_unused_port()
    server, thread = visualizer.start(visualizer.create_app(cls.session),
                                      port=port)

    def stop_server():
      server.should_exit = True
      thread.join()
    cls.addClassCleanup(stop_server)
    cls.driver = browser.headless_chromium(cls.tmp / "profile")
    cls.addClassCleanup(cls.driver.quit)
    cls.driver.get(f"http://127.0.0.1:{port}/")
    cls.count = 0
    cls.wait_frame()

  @classmethod
  def wait_frame(cls) -> None:
    """Waits until a frame newer than the last one is shown and the page
    has nothing more to render."""
    ui.WebDriverWait(cls.driver, 60).until(lambda d: d.execute_script(
        "return !busy && !dirty && Number(document.getElementById('frame')"
        f".dataset.count || 0) > {cls.count}"))
    cls.count = cls.driver.execute_script(
        "return Number(document.getElementById('frame').dataset.count)")

  def shown_image(self) -> np.ndarray:
    """The PNG the page shows, decoded."""
    data = self.driver.execute_async_script("""
        const done = arguments[0];
        fetch(document.getElementById('frame').src).then(r => r.blob())
          .then(b => { const f = new FileReader();
                       f.onload = () => done(f.result.split(',')[1]);
                       f.readAsDataURL(b); });""")
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
      return np.asarray(image)

  def set_control(self, element_id: str, value, *,
                  frame: bool = True) -> None:
    """Sets an input's value and fires its input event, as a drag does;
    waits for the new frame when `frame`."""
    self.driver.execute_script(
        "const e = document.getElementById(arguments[0]);"
        "e.value = arguments[1];"
        "e.dispatchEvent(new Event('input'));", element_id, str(value))
    if frame:
      self.wait_frame()

  def wait_error(self, text: str) -> None:
    ui.WebDriverWait(self.driver, 60).until(
        lambda d: text in d.find_element("id", "error").text)

  def screenshot(self, name: str) -> None:
    self.driver.save_screenshot(str(self.shots / f"{name}.png"))

  def test_controls_change_the_image_as_they_should(self):
    self.set_control("seed", 0)
    np.testing.assert_array_equal(self.shown_image(), direct_image(0))
    self.screenshot("1_seed0")
    self.set_control("seed", 3)
    np.testing.assert_array_equal(self.shown_image(), direct_image(3))
    traces = self.session.renderer.traces
    self.set_control("tx", 0.25)
    moved = self.shown_image()
    np.testing.assert_array_equal(moved, direct_image(3, (0.25, 0.0)))
    self.screenshot("2_translated")
    for element_id, value in (("psi", 0.7), ("rotate", 20), ("ty", -0.1),
                              ("seed_drag", 3.5)):
      self.set_control(element_id, value)
    self.assertEqual(self.session.renderer.traces, traces)  # no recompile
    self.set_control("rotate", 0)
    self.set_control("ty", 0)
    self.set_control("psi", 1)
    select.Select(self.driver.find_element("id", "layer")).select_by_value(
        "L2_20_6")
    self.wait_frame()
    self.assertEqual(self.shown_image().shape, (20, 20, 3))
    self.screenshot("3_layer")
    select.Select(self.driver.find_element("id", "mode")).select_by_value(
        "fft")
    self.wait_frame()
    self.screenshot("4_fft")
    stats = self.driver.find_element("id", "render_ms").text
    self.assertGreater(float(stats), 0)

  def test_errors_show_in_the_page_and_the_server_keeps_running(self):
    self.set_control("class", 2, frame=False)
    self.wait_error("class: the network is unconditional")
    self.screenshot("5_error")
    self.set_control("class", "")
    self.assertEqual(self.driver.find_element("id", "error").text, "")
    path = self.driver.find_element("id", "network_path")
    path.clear()
    path.send_keys(str(self.tmp / "missing.pkl"))
    self.driver.find_element("id", "load").click()
    self.wait_error("missing.pkl")
    self.screenshot("6_bad_network")
    self.set_control("seed", 5)  # a new frame: the old network renders
    self.assertEqual(self.driver.find_element("id", "error").text, "")


if __name__ == "__main__":
  absltest.main()
