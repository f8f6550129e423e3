"""Progress bars for long data steps (DESIGN §6: every long step shows progress)."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(items: Iterable[T], desc: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """tqdm over `items` on stderr; a plain iterator when disabled (tests, workers)."""
    if not enabled:
        return iter(items)
    return iter(tqdm(items, desc=desc, total=total, file=sys.stderr, dynamic_ncols=True, leave=False))
