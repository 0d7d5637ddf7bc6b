"""Screenshot of `sg3jax visualize` for the README (docs/visualizer.png).

Serves --network, opens the page in headless Chromium, sets a seed, a
translation, a rotation and style mixing, waits for the frame and saves
the window.

    python experiments/visualizer_screenshot.py --network=out/quickstart \\
        [--out=docs/visualizer.png]
"""

import argparse
import pathlib
import tempfile

import portpicker
from selenium.webdriver.support import ui

from sg3jax import visualizer
from sg3jax.visualizer import browser

CONTROLS = {"seed": 7, "tx": 0.125, "rotate": 15, "psi": 0.8}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--network", required=True)
  parser.add_argument("--out", default="docs/visualizer.png")
  args = parser.parse_args()
  session = visualizer.Session(args.network)
  port = portpicker.pick_unused_port()
  server, thread = visualizer.start(visualizer.create_app(session),
                                    port=port)
  with tempfile.TemporaryDirectory() as profile:
    driver = browser.headless_chromium(profile)
    try:
      driver.get(f"http://127.0.0.1:{port}/")
      for element_id, value in CONTROLS.items():
        driver.execute_script(
            "const e = document.getElementById(arguments[0]);"
            "e.value = arguments[1]; e.dispatchEvent(new Event('input'));",
            element_id, str(value))
      driver.find_element("css selector", "#mix_layers input[value='3']"
                          ).click()
      ui.WebDriverWait(driver, 300).until(lambda d: d.execute_script(
          "return !busy && !dirty && document.getElementById('frame')"
          ".dataset.count >= 2"))
      pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
      driver.save_screenshot(args.out)
    finally:
      driver.quit()
  server.should_exit = True
  thread.join()
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
