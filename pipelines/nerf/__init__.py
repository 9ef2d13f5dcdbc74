"""Chapter 6: neural radiance fields."""
