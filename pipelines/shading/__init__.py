"""Chapter 2: the Shading lab (render settings and buffers, batch fitting, the point-set exercise, turntables)."""
