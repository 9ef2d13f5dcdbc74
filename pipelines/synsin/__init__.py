"""SynSin: single-image novel-view synthesis with a differentiable point-cloud renderer (chapter 9)."""
