"""Tests of pipelines/core."""
