"""Tests of pipelines/shading."""
