"""The methods, as numpy on arrays: indices, composites, seasonal references, detection, digging
areas, volumes, and the chunk-wise forms of each step (a chunk's share of the site and how the
chunks' summaries join). No files, no Dask, no scene sources. Modules here import numpy, scipy,
each other and kpgeo's top-level ``config`` and ``months``, and nothing from ``sources``,
``compute`` or ``products``.
"""
