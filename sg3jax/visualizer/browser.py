"""Headless Chromium for the visualizer's browser test and screenshots.

Needs Selenium (a test dependency) and Debian's `chromium` and
`chromium-driver`. The flags keep Chromium off the network (none is
reachable here: background services would only log errors) and its state
in a fresh profile directory.
"""

import pathlib
import shutil

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run")


def chromium_paths() -> tuple[str | None, str | None]:
  """(chromium, chromedriver) executables, None where missing."""
  return shutil.which("chromium"), shutil.which("chromedriver")


def headless_chromium(profile: str | pathlib.Path, *,
                      window: tuple[int, int] = (1100, 760)):
  """A Selenium Chrome driver of Debian's chromium (quit it when done)."""
  # Imported here: Selenium is a test dependency, not a runtime one.
  from selenium import webdriver
  from selenium.webdriver.chrome import service as chrome
  chromium, chromedriver = chromium_paths()
  if chromium is None or chromedriver is None:
    raise RuntimeError("headless_chromium: needs Debian's chromium and "
                       "chromium-driver (apt-get install chromium "
                       "chromium-driver)")
  options = webdriver.ChromeOptions()
  options.binary_location = chromium
  for flag in FLAGS + (f"--user-data-dir={profile}",
                       f"--window-size={window[0]},{window[1]}"):
    options.add_argument(flag)
  return webdriver.Chrome(
      service=chrome.Service(executable_path=chromedriver), options=options)
