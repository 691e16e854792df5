"""The embedded synthetic Sentinel-2 archive (docs/product.md §6): a savanna world, its scenes, its truth."""

from .archive import SynthResult, write_archive

__all__ = ["SynthResult", "write_archive"]
