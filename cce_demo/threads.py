"""The torch thread count of a command-line run, set in one place.

The count decides which kernels torch runs and so the floating-point order of every convolution: a run replays
bit for bit only at the count it was trained with. So the CLIs set it before a run records its environment,
and a resumed or replayed run defaults to the count its record holds.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch


def set_thread_count(count: int | None) -> None:
    """Set torch's intra-op thread count; None keeps torch's own choice. Raises ValueError below 1."""
    if count is None:
        return
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"threads: must be at least 1, got {count}")
    torch.set_num_threads(count)


def recorded_thread_count(metadata: Mapping[str, Any]) -> int | None:
    """The thread count a run's record (run.json) says it trained with; None when it does not say."""
    count = (metadata.get("environment") or {}).get("torch_threads")
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else None
