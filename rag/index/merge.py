"""When segments are merged: a plain policy over their live sizes, as Whoosh's MERGE_SMALL."""

from __future__ import annotations

# Beyond this many segments the newest are merged whatever their sizes.
MAX_SEGMENTS = 12


def merge_newest(live_sizes: list[int]) -> bool:
    """Merge the two newest segments while the older is no bigger than the newer (sizes
    double, so a document is rewritten O(log n) times over its life), or while there are
    too many."""
    if len(live_sizes) < 2:
        return False
    return live_sizes[-2] <= live_sizes[-1] or len(live_sizes) > MAX_SEGMENTS
