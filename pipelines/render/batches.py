"""Heterogeneous mesh batches as list, padded and packed tensors, with the index maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere, torus

MeshList = list[tuple[np.ndarray, np.ndarray]]

_FIRST = 12  # how many leading entries of a long index map to show
_MAX_COLUMNS = 1500  # heat-map columns before the figure samples them
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def as_meshes(meshes: MeshList | Meshes, device: torch.device | str = "cpu") -> Meshes:
    """A Meshes batch from a Meshes (returned as is) or a non-empty list of (verts (V, 3), faces (F, 3))
    arrays; ValueError with a sentence for bad shapes, non-finite vertices or out-of-range indices."""
    if isinstance(meshes, Meshes):
        if len(meshes) == 0:
            raise ValueError("The batch is empty: give at least one mesh.")
        return meshes
    if len(meshes) == 0:
        raise ValueError("The batch is empty: give at least one mesh.")
    verts_list, faces_list = [], []
    for i, item in enumerate(meshes):
        try:
            verts, faces = item
            v = np.asarray(verts, dtype=np.float32)
            f = np.asarray(faces)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Mesh {i} must be a (verts, faces) pair of arrays.") from exc
        if f.size == 0:
            f = f.reshape(0, 3)
        if v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"Mesh {i}: vertices must have shape (V, 3), got {v.shape}.")
        if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"Mesh {i}: faces must be integer triangles of shape (F, 3), got {f.shape} {f.dtype}.")
        if not np.isfinite(v).all():
            raise ValueError(f"Mesh {i}: vertices contain NaN or infinite values.")
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"Mesh {i}: face indices must lie in [0, {len(v) - 1}].")
        verts_list.append(torch.as_tensor(v, device=device))  # (V_i, 3)
        faces_list.append(torch.as_tensor(f.astype(np.int64), device=device))  # (F_i, 3)
    return Meshes(verts=verts_list, faces=faces_list)


def _runs(idx: np.ndarray) -> list[dict[str, int]]:
    """Run-length summary of an index map: [{"mesh", "start", "stop", "length"}] (stop exclusive)."""
    if len(idx) == 0:
        return []
    cuts = np.flatnonzero(np.diff(idx)) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(idx)]])
    return [
        {"mesh": int(idx[a]), "start": int(a), "stop": int(b), "length": int(b - a)}
        for a, b in zip(starts, stops, strict=True)
    ]


def _index_map(idx: torch.Tensor) -> dict[str, Any]:
    arr = idx.cpu().numpy()
    return {"length": int(len(arr)), "runs": _runs(arr), "first": arr[:_FIRST].tolist()}


def _per_mesh(m: Meshes) -> tuple[list[dict], list[dict], dict[str, bool]]:
    """Per mesh: its counts and rows in the packed and padded tensors, its faces_packed offset, and the checks
    that padded and packed rows match the list (see batch_report)."""
    n = len(m)
    nv = m.num_verts_per_mesh().cpu()  # (N,)
    nf = m.num_faces_per_mesh().cpu()  # (N,)
    ne = m.num_edges_per_mesh().cpu()  # (N,)
    verts_list, faces_list = m.verts_list(), m.faces_list()
    verts_padded, faces_padded = m.verts_padded(), m.faces_padded()  # (N, V_max, 3), (N, F_max, 3)
    verts_packed, faces_packed = m.verts_packed(), m.faces_packed()  # (sum V, 3), (sum F, 3)
    v_first = m.mesh_to_verts_packed_first_idx().cpu()  # (N,)
    f_first = m.mesh_to_faces_packed_first_idx().cpu()  # (N,)
    v_max, f_max = int(verts_padded.shape[1]), int(faces_padded.shape[1])

    per_mesh, offsets = [], []
    ok_padded = ok_packed = ok_faces = True
    for i in range(n):
        vi, fi = int(nv[i]), int(nf[i])
        a, b = int(v_first[i]), int(f_first[i])
        per_mesh.append(
            {
                "mesh": i,
                "verts": vi,
                "faces": fi,
                "edges": int(ne[i]),
                "verts_packed_rows": [a, a + vi],
                "faces_packed_rows": [b, b + fi],
                "verts_padding_rows": v_max - vi,
                "faces_padding_rows": f_max - fi,
            }
        )
        ok_padded &= bool(torch.equal(verts_padded[i, :vi], verts_list[i]))
        ok_padded &= bool((verts_padded[i, vi:] == 0).all()) and bool((faces_padded[i, fi:] == -1).all())
        ok_packed &= bool(torch.equal(verts_packed[a : a + vi], verts_list[i]))
        shifted = faces_list[i] + a  # (F_i, 3)
        ok_faces &= bool(torch.equal(faces_packed[b : b + fi], shifted))
        offsets.append(
            {
                "mesh": i,
                "offset": a,
                "faces_list_row0": faces_list[i][0].tolist() if fi else None,
                "faces_packed_row0": faces_packed[b].tolist() if fi else None,
            }
        )
    checks = {"padded_matches_list": ok_padded, "packed_matches_list": ok_packed, "faces_offsets": ok_faces}
    return per_mesh, offsets, checks


def batch_report(meshes: MeshList | Meshes) -> dict:
    """JSON-able description of a batch of N meshes in PyTorch3D's three representations:

    list    verts_list[i] (V_i, 3), faces_list[i] (F_i, 3) with per-mesh (local) vertex indices.
    padded  verts_padded (N, V_max, 3): verts_padded[i, :V_i] = verts_list[i], rows V_i.. are padding (0.0);
            faces_padded (N, F_max, 3), padding -1. "padding" counts real and padded rows.
    packed  verts_packed (sum V_i, 3), meshes one after another; verts_packed_to_mesh_idx (sum V_i,) says
            which mesh each row belongs to (shown as runs + the first entries);
            mesh_to_verts_packed_first_idx[i] = V_0 + ... + V_{i-1}.
            faces_packed (sum F_i, 3) holds GLOBAL indices into verts_packed:
            faces_packed[fi[i]:fi[i] + F_i] = faces_list[i] + mesh_to_verts_packed_first_idx[i],
            with fi = mesh_to_faces_packed_first_idx; "faces_packed_offsets" shows and checks this per mesh.
    "checks" re-derives each statement from the tensors (all True for a valid batch)."""
    m = as_meshes(meshes)
    n = len(m)
    nv = m.num_verts_per_mesh().cpu()  # (N,)
    nf = m.num_faces_per_mesh().cpu()  # (N,)
    verts_list, faces_list = m.verts_list(), m.faces_list()
    verts_padded, faces_padded = m.verts_padded(), m.faces_padded()  # (N, V_max, 3), (N, F_max, 3)
    verts_packed, faces_packed = m.verts_packed(), m.faces_packed()  # (sum V, 3), (sum F, 3)
    v_first = m.mesh_to_verts_packed_first_idx().cpu()  # (N,)
    f_first = m.mesh_to_faces_packed_first_idx().cpu()  # (N,)
    v_max, f_max = int(verts_padded.shape[1]), int(faces_padded.shape[1])
    per_mesh, offsets, checks = _per_mesh(m)

    v_real, f_real = int(nv.sum()), int(nf.sum())
    return {
        "num_meshes": n,
        "per_mesh": per_mesh,
        "list": {
            "verts_list_shapes": [list(v.shape) for v in verts_list],
            "faces_list_shapes": [list(f.shape) for f in faces_list],
        },
        "padded": {
            "verts_padded_shape": list(verts_padded.shape),
            "faces_padded_shape": list(faces_padded.shape),
            "verts_pad_value": 0.0,
            "faces_pad_value": -1,
            "verts_real_rows": v_real,
            "verts_padding_rows": n * v_max - v_real,
            "faces_real_rows": f_real,
            "faces_padding_rows": n * f_max - f_real,
            "verts_padding_fraction": round(1.0 - v_real / (n * v_max), 4) if v_max else 0.0,
            "faces_padding_fraction": round(1.0 - f_real / (n * f_max), 4) if f_max else 0.0,
        },
        "packed": {
            "verts_packed_shape": list(verts_packed.shape),
            "faces_packed_shape": list(faces_packed.shape),
            "edges_packed_shape": list(m.edges_packed().shape),
        },
        "index_maps": {
            "num_verts_per_mesh": nv.tolist(),
            "num_faces_per_mesh": nf.tolist(),
            "mesh_to_verts_packed_first_idx": v_first.tolist(),
            "mesh_to_faces_packed_first_idx": f_first.tolist(),
            "verts_packed_to_mesh_idx": _index_map(m.verts_packed_to_mesh_idx()),
            "faces_packed_to_mesh_idx": _index_map(m.faces_packed_to_mesh_idx()),
            # verts_padded.reshape(-1, 3)[verts_padded_to_packed_idx] == verts_packed
            "verts_padded_to_packed_idx": {
                "length": v_real,
                "first": m.verts_padded_to_packed_idx()[:_FIRST].tolist(),
                "rule": "mesh i's packed rows come from flat padded rows i * V_max ... i * V_max + V_i - 1",
            },
        },
        "faces_packed_offsets": {
            "rule": "faces_packed[fi[i] : fi[i] + F_i] = faces_list[i] + mesh_to_verts_packed_first_idx[i]",
            "per_mesh": offsets,
        },
        "checks": checks,
    }


def _sample_columns(length: int) -> np.ndarray:
    """Column indices to draw: all of them, or _MAX_COLUMNS evenly spaced ones for long tensors."""
    if length <= _MAX_COLUMNS:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, _MAX_COLUMNS).astype(np.int64))


def _discrete_scale(n: int) -> list[list]:
    """A stepped colour scale so mesh i (z = i, zmin -0.5, zmax n - 0.5) gets palette colour i."""
    scale = []
    for i in range(n):
        colour = _PALETTE[i % len(_PALETTE)]
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


def batch_figure(meshes: MeshList | Meshes) -> go.Figure:
    """Plotly figure, 2 x 2 heat maps, one colour per mesh, grey = padding:
    top: verts_padded (N x V_max) and faces_padded (N x F_max), each cell a row of the padded tensor;
    bottom: verts_packed and faces_packed as one strip of rows coloured by verts/faces_packed_to_mesh_idx,
    with dashed lines at mesh_to_*_packed_first_idx. Hover gives the mesh and its local row. Tensors longer
    than 1,500 rows are drawn with evenly sampled columns (the x axis keeps true row indices)."""
    m = as_meshes(meshes)
    n = len(m)
    nv = m.num_verts_per_mesh().cpu().numpy()
    nf = m.num_faces_per_mesh().cpu().numpy()
    v_first = m.mesh_to_verts_packed_first_idx().cpu().numpy()
    f_first = m.mesh_to_faces_packed_first_idx().cpu().numpy()
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            f"verts_padded ({n} x {int(nv.max())} x 3)",
            f"faces_padded ({n} x {int(nf.max())} x 3)",
            f"verts_packed ({int(nv.sum())} x 3)",
            f"faces_packed ({int(nf.sum())} x 3)",
        ),
        vertical_spacing=0.18,
        horizontal_spacing=0.08,
    )
    common = {"zmin": -0.5, "zmax": n - 0.5, "colorscale": _discrete_scale(n), "showscale": False, "xgap": 0}
    for col, (counts, first, what) in enumerate(((nv, v_first, "vertex"), (nf, f_first, "face")), start=1):
        width = int(counts.max())
        cols = _sample_columns(width)
        z = np.full((n, len(cols)), np.nan)  # (N, columns): mesh index, NaN = padding
        text = np.empty((n, len(cols)), dtype=object)
        for i in range(n):
            real = cols < counts[i]
            z[i, real] = i
            text[i] = np.where(real, [f"mesh {i}, {what} {c}" for c in cols], f"mesh {i}: padding")
        fig.add_trace(
            go.Heatmap(z=z, x=cols, y=[f"mesh {i}" for i in range(n)], text=text, hoverinfo="text", **common),
            row=1,
            col=col,
        )
        total = int(counts.sum())
        pcols = _sample_columns(total)
        owner = np.searchsorted(first, pcols, side="right") - 1  # (columns,) mesh of each packed row
        ptext = [f"packed row {c}: mesh {o}, local {what} {c - first[o]}" for c, o in zip(pcols, owner, strict=True)]
        fig.add_trace(
            go.Heatmap(z=owner[None].astype(float), x=pcols, y=["packed"], text=[ptext], hoverinfo="text", **common),
            row=2,
            col=col,
        )
        for i, start in enumerate(first):
            if i > 0:
                fig.add_vline(x=float(start) - 0.5, line={"dash": "dash", "color": "black"}, row=2, col=col)
        fig.update_xaxes(title_text=f"{what} row", row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)  # mesh 0 on top, like the tensor
        fig.update_xaxes(title_text=f"packed {what} row (first_idx {first.tolist()})", row=2, col=col)
    for i in range(n):  # legend entries for the colours
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"color": _PALETTE[i % len(_PALETTE)], "size": 10, "symbol": "square"},
                name=f"mesh {i}: V={int(nv[i])}, F={int(nf[i])}",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"color": "#d9d9d9", "size": 10, "symbol": "square"},
            name="padding",
        )
    )
    fig.update_layout(
        title="One batch, three layouts: list -> padded (rows to V_max, F_max) -> packed (rows concatenated)",
        plot_bgcolor="#d9d9d9",
        height=520,
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
    )
    return fig


def _cube() -> tuple[torch.Tensor, torch.Tensor]:
    """Unit cube [-0.5, 0.5]^3: verts (8, 3), outward-facing triangles (12, 3)."""
    verts = torch.tensor(
        [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=torch.float32
    )  # (8, 3); index = 4 * (x > 0) + 2 * (y > 0) + (z > 0)
    faces = torch.tensor(
        [
            [0, 1, 3], [0, 3, 2],  # x = -0.5
            [4, 6, 7], [4, 7, 5],  # x = +0.5
            [0, 4, 5], [0, 5, 1],  # y = -0.5
            [2, 3, 7], [2, 7, 6],  # y = +0.5
            [0, 2, 6], [0, 6, 4],  # z = -0.5
            [1, 5, 7], [1, 7, 3],  # z = +0.5
        ],
        dtype=torch.int64,
    )  # fmt: skip
    return verts, faces


def demo_batch() -> Meshes:
    """Three procedural meshes of different sizes, side by side along X (at x = -2, 0, 2):
    a cube (8 V, 12 F), an ico-sphere level 1 (42 V, 80 F) and a torus (128 V, 256 F)."""
    cube_v, cube_f = _cube()
    sphere = ico_sphere(1)
    ring = torus(r=0.2, R=0.6, sides=8, rings=16)
    verts = [cube_v, sphere.verts_list()[0] * 0.7, ring.verts_list()[0]]
    faces = [cube_f, sphere.faces_list()[0], ring.faces_list()[0]]
    shifts = torch.tensor([[-2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])  # (3, 3)
    return Meshes(verts=[v + s for v, s in zip(verts, shifts, strict=True)], faces=faces)
