"""Tests of pipelines/train."""
