"""The visualizer's web server: Starlette routes around a `Renderer`.

    GET  /             the page (page.html)
    GET  /api/info     the network, its layers, and the networks to switch to
    GET  /api/render   a PNG of the controls in the query (see `parse_query`);
                       its render time in ms in the X-Render-Ms header
    POST /api/network  {"path": ..., "step": ...} switches the network

Errors (an unreadable network, a wrong class label, a bad control) come
back as 400 {"error": message} for the page to show; the server keeps
running. Rendering runs in Starlette's thread pool, one frame at a time.
"""

import io
import pathlib
import threading
import time

from PIL import Image
from starlette import applications
from starlette import concurrency
from starlette import requests
from starlette import responses
from starlette import routing
import uvicorn

from sg3jax.training import checkpoints
from sg3jax.visualizer import render

PAGE = pathlib.Path(__file__).with_name("page.html")


def run_steps(path: str | pathlib.Path) -> list[int]:
  """Checkpoint steps of a training run directory (none for other paths)."""
  directory = pathlib.Path(path) / "checkpoints"
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir()
                if p.is_dir() and p.name.isdigit())


class Session:
  """The network shown and the networks the page can switch to."""

  def __init__(self, network: str):
    self.root = network
    self.renderer: render.Renderer | None = None
    self.current: dict | None = None
    self.error: str | None = None
    try:
      self.load(network)
    except ValueError as e:
      self.error = str(e)

  def networks(self) -> list[dict]:
    """[{"path", "step", "label"}]: each checkpoint of a run directory,
    else the network given on the command line."""
    steps = run_steps(self.root)
    name = pathlib.Path(self.root).name
    if not steps:
      return [{"path": self.root, "step": None, "label": name}]
    return [{"path": self.root, "step": s, "label": f"{name} @ {s}"}
            for s in steps]

  def load(self, path: str, step: int | None = None) -> None:
    """Switches to the generator at `path` (ValueError: unreadable); a run
    directory's newest readable checkpoint when `step` is None (newer
    unreadable ones are skipped with a warning, as every command does)."""
    try:
      if step is None and run_steps(path):
        step, networks = checkpoints.load_run_networks(path)
      else:
        networks = checkpoints.load_any_networks(path, step=step)
      module, variables = checkpoints.generator_of(networks, path)
    except (OSError, KeyError) as e:
      raise ValueError(f"network: cannot read {path}: {e}") from None
    if self.renderer is not None and self.renderer.module == module:
      # Another checkpoint of the same architecture: keep the compilations.
      self.renderer.variables = variables
    else:
      self.renderer = render.Renderer(module, variables)
    self.current = {"path": path, "step": step}
    self.error = None

  def info(self) -> dict:
    r = self.renderer
    network = None if r is None else {
        **self.current, "num_ws": r.num_ws, "layers": r.layers,
        "c_dim": r.module.c_dim, "img_resolution": r.module.img_resolution}
    return {"network": network, "networks": self.networks(),
            "error": self.error}


def _number(query, name: str, kind, default):
  text = query.get(name)
  if text in (None, ""):
    return default
  try:
    return kind(text)
  except ValueError:
    raise ValueError(f"{name}: expected a {kind.__name__}, got {text!r}"
                     ) from None


def parse_query(query) -> tuple[render.View, render.Controls]:
  """(View, Controls) of /api/render's query parameters: seed, psi,
  cutoff, mix_seed, mix_layers ('0,3'), class, tx, ty, rotate, layer,
  mode, channel, gain_db, fft_range_db."""
  mix = query.get("mix_layers", "")
  try:
    mix_layers = tuple(int(i) for i in mix.split(",") if i.strip())
  except ValueError:
    raise ValueError(f"mix_layers: expected e.g. '0,3', got {mix!r}"
                     ) from None
  rotate = _number(query, "rotate", float, 0.0)
  mode = query.get("mode", "rgb")
  view = render.View(layer=query.get("layer", render.OUTPUT), mode=mode,
                     rotated=mode == "eq" and rotate != 0)
  controls = render.Controls(
      seed=_number(query, "seed", float, 0.0),
      psi=_number(query, "psi", float, 1.0),
      cutoff=_number(query, "cutoff", int, None),
      mix_seed=_number(query, "mix_seed", int, 0), mix_layers=mix_layers,
      class_idx=_number(query, "class", int, None),
      translate=(_number(query, "tx", float, 0.0),
                 _number(query, "ty", float, 0.0)),
      rotate=rotate, channel=_number(query, "channel", int, 0),
      gain_db=_number(query, "gain_db", float, 0.0),
      fft_range_db=_number(query, "fft_range_db", float, 50.0))
  return view, controls


def png_bytes(image) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  return buffer.getvalue()


def _error(message: str) -> responses.JSONResponse:
  return responses.JSONResponse({"error": message}, status_code=400)


def create_app(session: Session) -> applications.Starlette:
  """The Starlette app serving `session` (see the module docstring)."""

  def page(request: requests.Request) -> responses.Response:
    del request
    return responses.HTMLResponse(PAGE.read_text())

  def info(request: requests.Request) -> responses.Response:
    del request
    return responses.JSONResponse(session.info())

  def render_png(request: requests.Request) -> responses.Response:
    if session.renderer is None:
      return _error(f"no network loaded: {session.error}")
    try:
      view, controls = parse_query(request.query_params)
      start = time.perf_counter()
      image = session.renderer.frame(view, controls)
      elapsed = (time.perf_counter() - start) * 1000
    except ValueError as e:
      return _error(str(e))
    return responses.Response(png_bytes(image), media_type="image/png",
                              headers={"X-Render-Ms": f"{elapsed:.1f}",
                                       "Cache-Control": "no-store"})

  async def network(request: requests.Request) -> responses.Response:
    try:
      body = await request.json()
      path, step = body.get("path"), body.get("step")
      if not isinstance(path, str) or not path:
        raise ValueError(f"network: expected a path, got {path!r}")
      await concurrency.run_in_threadpool(
          session.load, path, None if step is None else int(step))
    except ValueError as e:
      session.error = str(e)
      return _error(str(e))
    return responses.JSONResponse(session.info())

  return applications.Starlette(routes=[
      routing.Route("/", page), routing.Route("/api/info", info),
      routing.Route("/api/render", render_png),
      routing.Route("/api/network", network, methods=["POST"])])


def start(app, *, host: str = "127.0.0.1", port: int = 8000
          ) -> tuple[uvicorn.Server, threading.Thread]:
  """Serves `app` from a thread; returns once it accepts connections.
  Stop with `server.should_exit = True; thread.join()`."""
  server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                         log_level="warning"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  while not server.started:
    if not thread.is_alive():
      raise RuntimeError(f"visualizer: could not serve on {host}:{port}")
    time.sleep(0.05)
  return server, thread
