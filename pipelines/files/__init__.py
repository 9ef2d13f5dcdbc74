"""3D files: limits and errors, one reader per format, the upload stager and loader, exporters and geometry statistics."""
