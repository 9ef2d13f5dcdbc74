"""Chapter 3: deform an ico-sphere onto a target with chamfer and mesh regularisers."""
