"""The always-on privacy guard, part of the kernel: what no config, profile or client can turn off.

- A RESTRICTED request never reaches a third_party backend (`third_party_forbidden`), whatever
  the privacy policy's parameters say; the pipeline applies it to every request as PRIVACY_GUARD.
- Content detection runs on every request: the configured guards (policies with
  `binding = True`, such as privacy) prepare it, and with none configured the registry's
  default guard does (`Registry.default_guard`, the built-in privacy policy with defaults).
"""

from __future__ import annotations

from router.core.framework import BackendView
from router.core.types import Privacy

PRIVACY_GUARD = "privacy"  # the name rejections by the always-on rule are reported under


def third_party_forbidden(privacy: Privacy, backend: BackendView) -> bool:
    """True exactly for a RESTRICTED request on a third_party backend, whatever the config."""
    return privacy == Privacy.RESTRICTED and backend.config.effective_trust == "third_party"
