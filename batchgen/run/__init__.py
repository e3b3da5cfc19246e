"""Running a manifest: options, resume plan, the output folder's layout, finishing, progress."""
