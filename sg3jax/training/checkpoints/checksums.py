"""SHA-256 checksums of a checkpoint's files, written at save, verified at
restore.

An Orbax checkpoint directory (a training step, or a network checkpoint)
holds one subdirectory per item ("networks", "optimizer", "meta", ...).
`write` lists the SHA-256 of every file inside those items in
`<checkpoint>/SHA256SUMS`, in the format of `sha256sum` (so that
`cd <checkpoint> && sha256sum -c SHA256SUMS` checks them too). It runs
while the checkpoint is still in its temporary directory, after Orbax has
written every array file and index and before the directory is renamed
into place, so a checkpoint exists with its checksums or not at all. The
files at the top level are Orbax's own bookkeeping, which it updates when
it commits the directory; they are not listed.

`verify` checks the files of the items about to be read: a byte that
changed (even one whose array still decodes), a missing file or an
unlisted one raises ValueError naming the file. A checkpoint written
before sg3jax kept checksums has no SHA256SUMS: it is read unverified,
with a warning.
"""

import hashlib
import pathlib
import warnings
from collections.abc import Iterable, Mapping

SUMS_FILE = "SHA256SUMS"


def file_sha256(path: pathlib.Path) -> str:
  """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB
  blocks; hashlib.file_digest needs Python 3.11, sg3jax supports 3.10)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def item_files(directory: pathlib.Path, items: Iterable[str]) -> list[str]:
  """Sorted paths, relative to `directory` and with "/", of the files in
  its subdirectories `items` (at any depth)."""
  return sorted(path.relative_to(directory).as_posix()
                for item in items for path in (directory / item).rglob("*")
                if path.is_file())


def format_sums(sums: Mapping[str, str]) -> str:
  """`sha256sum` output for {relative path: hex digest}."""
  return "".join(f"{digest}  {path}\n" for path, digest in sorted(
      sums.items()))


def parse_sums(text: str, source: pathlib.Path) -> dict[str, str]:
  """{relative path: hex digest} of `format_sums` output read from
  `source` (named in the ValueError for a malformed line)."""
  sums = {}
  for number, line in enumerate(text.splitlines(), 1):
    digest, separator, path = line.partition("  ")
    if (not separator or not path or len(digest) != 64 or
        digest.strip("0123456789abcdef")):
      raise ValueError(f"{source}: line {number}: expected '<64 hex "
                       f"digits>  <path>', got {line[:120]!r}")
    sums[path] = digest
  return sums


def write(directory: str | pathlib.Path) -> None:
  """Writes SHA256SUMS of every file in `directory`'s item subdirectories
  (call it before the checkpoint directory is renamed into place)."""
  directory = pathlib.Path(directory)
  items = [p.name for p in directory.iterdir() if p.is_dir()]
  sums = {path: file_sha256(directory / path)
          for path in item_files(directory, items)}
  (directory / SUMS_FILE).write_text(format_sums(sums))


def mismatches(expected: Mapping[str, str], found: Mapping[str, str]
               ) -> list[str]:
  """One line per file whose digest differs between {relative path:
  digest} `expected` (SHA256SUMS) and `found` (on disk), or that only one
  of them has."""
  problems = []
  for path in sorted(expected.keys() | found.keys()):
    if path not in found:
      problems.append(f"{path}: missing (listed in {SUMS_FILE})")
    elif path not in expected:
      problems.append(f"{path}: not listed in {SUMS_FILE}")
    elif found[path] != expected[path]:
      problems.append(f"{path}: SHA-256 {found[path]}, expected "
                      f"{expected[path]} ({SUMS_FILE})")
  return problems


def verify(directory: str | pathlib.Path, items: Iterable[str]) -> None:
  """Checks the files of `directory`'s subdirectories `items` against its
  SHA256SUMS (see the module docstring); ValueError naming each file that
  differs, is missing or is unlisted. Without SHA256SUMS, warns that the
  items are read unverified."""
  directory = pathlib.Path(directory)
  items = sorted(items)
  sums_path = directory / SUMS_FILE
  if not sums_path.exists():
    warnings.warn(f"{directory}: no {SUMS_FILE} (saved before sg3jax kept "
                  f"checksums): reading {', '.join(items)} unverified",
                  RuntimeWarning, stacklevel=2)
    return
  prefixes = tuple(f"{item}/" for item in items)
  expected = {path: digest for path, digest in
              parse_sums(sums_path.read_text(), sums_path).items()
              if path.startswith(prefixes)}
  found = {path: file_sha256(directory / path)
           for path in item_files(directory, items)}
  problems = mismatches(expected, found)
  if problems:
    raise ValueError(f"{directory}: " + "; ".join(problems))
