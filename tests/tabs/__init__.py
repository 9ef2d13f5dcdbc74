"""Tests of the app and its tabs."""
