"""Chapter 1: inspect a 3D file (load, cross-check, measure, convert)."""
