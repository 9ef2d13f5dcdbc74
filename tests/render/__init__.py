"""Tests of pipelines/render."""
