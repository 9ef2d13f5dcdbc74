"""Mesh R-CNN (chapter 10): procedural single-object data, the ShapeNet-mode VoxMesh model, training, evaluation."""
