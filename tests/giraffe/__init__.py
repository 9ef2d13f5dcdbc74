"""Tests of pipelines/giraffe."""
