"""Tests of the SynSin capability."""
