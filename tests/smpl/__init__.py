"""Tests of pipelines/smpl."""
