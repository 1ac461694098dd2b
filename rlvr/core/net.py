"""Is the network there? A quick answer, so an offline machine fails in seconds with one line
rather than after a client's retries (model downloads, `hub:` suites, `rlvr data fetch`)."""

from __future__ import annotations

import os
import re
import socket

__all__ = ["hub_endpoint", "hub_offline", "reachable"]

_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """The Hugging Face clients' own switches: HF_HUB_OFFLINE (and HF_DATASETS_OFFLINE)."""
    return any(os.environ.get(key, "").strip().lower() in _TRUE
               for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def reachable(url: str, timeout_s: float = 3.0) -> bool:
    """A TCP connection to the URL's host (port 443 unless the URL names one). Behind a proxy
    the host itself may be unreachable while the clients get through: then the clients decide."""
    if any(os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                                           "all_proxy")):
        return True
    host = re.sub(r"^[a-z]+://", "", url).split("/")[0]
    name, _, port = host.partition(":")
    try:
        socket.create_connection((name, int(port or 443)), timeout=timeout_s).close()
    except (OSError, ValueError):
        return False
    return True
