"""Rendering: camera models and conventions, rotations, PyTorch3D render factories, torch rasterisers, procedural meshes, images and videos."""
