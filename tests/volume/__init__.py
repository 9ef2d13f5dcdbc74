"""Tests of pipelines/volume."""
