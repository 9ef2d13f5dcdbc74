"""Tests of pipelines/pose."""
