"""The installed `tokenrouter` entry point (`router.cli:main`).

The CLI itself lives in router/tools/cli.py.
"""

from router.tools.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
