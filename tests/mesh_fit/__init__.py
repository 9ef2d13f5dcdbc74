"""Tests of pipelines/mesh_fit."""
