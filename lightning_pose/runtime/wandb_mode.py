"""Which W&B mode a run uses, decided before anything touches the network or asks for a login.

``WANDB_MODE`` (``online``, ``offline``, ``disabled``) always wins. Without it a run logs online
only when an API key is configured (``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B host,
what ``wandb login`` writes) and the host answers within a few seconds; otherwise it logs
offline (``wandb sync <run dir>`` uploads it later). ``wandb.init`` itself would prompt for a
login on a terminal, fail without one, or wait 90 s for an unreachable server.
"""

from __future__ import annotations

import netrc
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_HOST = "https://api.wandb.ai"


def wandb_host() -> str:
    """The W&B server's host name (``WANDB_BASE_URL``, default api.wandb.ai)."""
    return urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)).hostname or "api.wandb.ai"


def has_api_key(host: str | None = None) -> bool:
    """An API key in ``WANDB_API_KEY`` or in the netrc file (``$NETRC`` or ``~/.netrc``) for
    ``host``; never reads the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        entry = netrc.netrc(path).authenticators(host or wandb_host())
    except (OSError, netrc.NetrcParseError):
        return False
    return entry is not None and bool(entry[2])


def host_reachable(host: str, timeout_s: float = 3.0) -> bool:
    """A TCP connection to ``host``:443 opens within ``timeout_s``."""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def wandb_mode(reachable: Callable[[str], bool] = host_reachable) -> str | None:
    """The ``mode`` to pass to ``wandb.init``: None where ``WANDB_MODE`` is set (wandb reads
    it) or where online logging can work; ``"offline"`` without an API key or without a
    reachable server."""
    if os.environ.get("WANDB_MODE"):
        return None
    host = wandb_host()
    if has_api_key(host) and reachable(host):
        return None
    return "offline"


def finish_wandb_run(exit_code: int = 0) -> None:
    """Close this process's W&B run, if one was started (offline runs too): without it wandb
    reports the run abandoned at interpreter exit and never records that it finished.
    ``exit_code`` non-zero marks it failed (a fit stopped by a signal)."""
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=exit_code)
