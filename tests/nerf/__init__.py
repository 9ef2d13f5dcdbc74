"""Tests of pipelines/nerf."""
