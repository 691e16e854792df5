"""The period report (``kpgeo report``): a finished run's findings over a period as
``report.html`` (self-contained, offline) and ``report.pdf`` (A4), from its products alone."""

from __future__ import annotations

from .build import Report, report_folder, write_report

__all__ = ["Report", "report_folder", "write_report"]
