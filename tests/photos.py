"""Test photos come from the same generator as `neardup demo`."""
from __future__ import annotations

from neardup.demo import photo, save_near_copy, save_photos

__all__ = ["photo", "save_near_copy", "save_photos"]
