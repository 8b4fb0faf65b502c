"""neardup: find near-duplicate photos by perceptual hash."""

from __future__ import annotations

__version__ = "0.1.0"
