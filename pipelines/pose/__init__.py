"""Chapter 4: camera pose by differentiable rendering, and tracking."""
