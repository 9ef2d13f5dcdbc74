"""Mesh fitting's regularisers over a fixed topology: PyTorch3D's edge, normal-consistency and uniform Laplacian
losses, with everything that depends only on the faces (edges, the face pairs across each edge, the Laplacian)
computed once per fit instead of at every step (the ico-sphere's connectivity never changes while it deforms)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Topology:
    """What the losses need from a closed triangle mesh's faces (F, 3): its edges (E, 2), the 4 vertices of the
    two faces across each edge (E, 4: the edge's ends, then each face's opposite vertex), and the uniform Laplacian
    (V, V) sparse (−1 on the diagonal, 1/degree to each neighbour)."""

    edges: torch.Tensor
    face_pairs: torch.Tensor
    laplacian: torch.Tensor

    @classmethod
    def of(cls, faces: torch.Tensor, num_verts: int) -> Topology:
        """Raises ValueError unless every edge joins exactly two faces (a closed manifold, like the ico-sphere)."""
        a, b, c = faces.unbind(1)
        ends = torch.stack([torch.stack([a, b], 1), torch.stack([b, c], 1), torch.stack([c, a], 1)], 1)  # (F, 3, 2)
        opposite = torch.stack([c, a, b], 1).reshape(-1)  # (3F,)
        ends = ends.reshape(-1, 2).sort(dim=1).values  # (3F, 2) each edge as (low, high)
        key = ends[:, 0] * num_verts + ends[:, 1]
        order = torch.argsort(key, stable=True)
        key, ends, opposite = key[order], ends[order], opposite[order]
        if len(key) % 2 or not bool((key[0::2] == key[1::2]).all()):
            raise ValueError("The source mesh must be closed: every edge shared by exactly two faces.")
        edges = ends[0::2]  # (E, 2)
        face_pairs = torch.cat([edges, opposite[0::2, None], opposite[1::2, None]], 1)  # (E, 4)
        return cls(edges, face_pairs, uniform_laplacian(edges, num_verts))


def uniform_laplacian(edges: torch.Tensor, num_verts: int) -> torch.Tensor:
    """The uniform Laplacian (V, V) of undirected `edges` (E, 2) as a sparse COO tensor."""
    both = torch.cat([edges, edges.flip(1)])  # (2E, 2) each direction
    degree = torch.bincount(both[:, 0], minlength=num_verts).clamp(min=1).float()
    rows = torch.cat([both[:, 0], torch.arange(num_verts, device=edges.device)])
    cols = torch.cat([both[:, 1], torch.arange(num_verts, device=edges.device)])
    values = torch.cat([1.0 / degree[both[:, 0]], -torch.ones(num_verts, device=edges.device)])
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (num_verts, num_verts)).coalesce()


def edge_loss(verts: torch.Tensor, topo: Topology) -> torch.Tensor:
    """Mean squared edge length (PyTorch3D's mesh_edge_loss with target length 0)."""
    v0, v1 = verts[topo.edges[:, 0]], verts[topo.edges[:, 1]]
    return ((v0 - v1) ** 2).sum(1).mean()


def normal_consistency(verts: torch.Tensor, topo: Topology) -> torch.Tensor:
    """Mean of 1 − cos between the normals of the two faces across each edge (PyTorch3D's mesh_normal_consistency)."""
    v0, v1, v2, v3 = (verts[topo.face_pairs[:, k]] for k in range(4))
    edge = v1 - v0
    n0 = torch.cross(edge, v2 - v0, dim=1)
    n1 = -torch.cross(edge, v3 - v0, dim=1)
    return (1 - torch.nn.functional.cosine_similarity(n0, n1, dim=1, eps=1e-6)).mean()


def laplacian_smoothing(verts: torch.Tensor, topo: Topology) -> torch.Tensor:
    """Mean norm of the uniform Laplacian at each vertex (PyTorch3D's mesh_laplacian_smoothing, method uniform)."""
    return torch.sparse.mm(topo.laplacian, verts).norm(dim=1).mean()
