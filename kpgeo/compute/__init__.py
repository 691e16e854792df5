"""Dask graphs and clusters: a month (``month_graph``) and a baseline (``baseline_graph``) as
tasks per chunk of the site grid, each running the numpy of :mod:`kpgeo.methods` on the reads of
:mod:`kpgeo.sources` and writing tiles of :mod:`kpgeo.products`; the scheduler or cluster they
run on (``cluster``). Modules here may import ``sources``, ``methods``, ``products`` and the
top-level modules, never ``run`` or ``cli``.
"""
