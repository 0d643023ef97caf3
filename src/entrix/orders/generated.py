"""The command line of the generators of committed files (`make order-schema`, `make openapi`).

`python -m <generator>` prints the file; `--output PATH` replaces PATH with it atomically: the
text is made first, written to a temporary file beside PATH and renamed over it, so a generator
that fails (an unsupported model, an interrupted run, a full disk) leaves the committed file as
it was instead of empty or cut short.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

# The mode of a file created where none was (the usual 0o644 under the usual umask).
_NEW_FILE_MODE = 0o666


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) in one rename, keeping its permissions."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = _NEW_FILE_MODE & ~umask
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def main(render: Callable[[], str], description: str, argv: Sequence[str] | None = None) -> None:
    """Print `render()`, or write it to `--output PATH` atomically."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="replace PATH atomically (left as it was when generation fails) instead of printing",
    )
    arguments = parser.parse_args(argv)
    text = render()
    if arguments.output is None:
        sys.stdout.write(text)
    else:
        write_atomically(arguments.output, text)
