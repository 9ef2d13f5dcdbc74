"""Training helpers shared by capabilities: multi-view data, rays and ray marching, the shared ray-training loop, point-set metrics."""
