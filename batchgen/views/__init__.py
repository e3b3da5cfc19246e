"""Read-only views of a run folder: status, grids, report, export, merge."""
