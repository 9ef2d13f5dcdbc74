"""Chapter 5: voxel-grid volumetric reconstruction from multi-view renders."""
