"""The on-disk contract (docs/product.md): how products are written and read back. Atomic
writes, scaled-integer encoding, COGs and their tiles, GeoJSON, CSV and JSON exports, product
tags, the time series, the manifest, and the map and index pages with their templates, styles,
scripts and vendored assets. Modules here may import ``methods`` (for the types and band codes
they store) and the top-level modules, and nothing from ``sources``, ``compute`` or ``run``.
"""
