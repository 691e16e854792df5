"""Row blocks for chains of numpy operations on a raster, and chunks of a site grid.

A step such as the evidence of an overpass is twenty-odd numpy operations, each making a
temporary array the size of its inputs. On a whole 601 px chunk every temporary (1.4 MB of
float32) spills out of the CPU's cache, and each operation waits on memory; on blocks of a few
tens of rows they stay in it, and the step runs about twice as fast.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Pixels of a block: 128 KB a float32 temporary, so that a step's dozen or so fit in the
#: L2 cache together (64 rows of a 601 px chunk; 32768 and 65536 measured alike).
BLOCK_PIXELS = 32768


def row_blocks(height: int, width: int, pixels: int = BLOCK_PIXELS) -> Iterator[slice]:
    """Slices of whole rows covering ``height`` rows of ``width`` pixels, about ``pixels``
    pixels each (at least one row).

    Examples
    --------
    >>> [(s.start, s.stop) for s in row_blocks(5, 10, pixels=20)]
    [(0, 2), (2, 4), (4, 5)]
    """
    rows = max(1, pixels // max(width, 1))
    for start in range(0, height, rows):
        yield slice(start, min(start + rows, height))


def chunk_slices(size: int, chunk: int) -> list[slice]:
    """The slices cutting ``size`` pixels into chunks of ``chunk`` (the last one shorter).

    Examples
    --------
    >>> [(s.start, s.stop) for s in chunk_slices(5, 2)]
    [(0, 2), (2, 4), (4, 5)]
    """
    return [slice(start, min(start + chunk, size)) for start in range(0, size, chunk)]
