"""The procedural body's surface: a signed distance of blended capsules and ellipsoids, meshed by marching cubes,
simplified, smoothed and unfolded into a closed T-pose mesh (numpy; used only to build the asset)."""

from __future__ import annotations

import numpy as np


def _limb(a: tuple, b: tuple, ra: float, rb: float) -> tuple:
    return ("cone", np.array(a, float), np.array(b, float), ra, rb)


def _blob(c: tuple, r: tuple) -> tuple:
    return ("ellipsoid", np.array(c, float), np.array(r, float))


def _mirror(prim: tuple) -> tuple:
    flip = np.array([-1.0, 1.0, 1.0])
    if prim[0] == "cone":
        return ("cone", prim[1] * flip, prim[2] * flip, prim[3], prim[4])
    return ("ellipsoid", prim[1] * flip, prim[2])


def _surface_primitives() -> list[tuple]:
    """Capsules (tapered) and ellipsoids whose smooth union is the body surface."""
    centre = [
        ("torso",),
        _limb((-0.15, 0.415, -0.025), (0.15, 0.415, -0.025), 0.058, 0.058),  # shoulder girdle
        _limb((0.0, 0.42, -0.025), (0.0, 0.6, -0.005), 0.054, 0.048),  # neck
        _blob((0.0, 0.665, 0.012), (0.077, 0.108, 0.093)),  # head
        _blob((0.0, 0.595, 0.045), (0.058, 0.045, 0.05)),  # jaw
        _blob((0.0, 0.655, 0.1), (0.012, 0.022, 0.02)),  # nose
    ]
    left = [
        _blob((0.07, -0.095, -0.06), (0.08, 0.09, 0.072)),  # buttock
        _limb((0.085, -0.075, 0.0), (0.1, -0.48, 0.005), 0.085, 0.053),  # thigh
        _limb((0.1, -0.48, 0.005), (0.105, -0.885, -0.04), 0.05, 0.031),  # shin
        _blob((0.103, -0.63, -0.03), (0.047, 0.105, 0.048)),  # calf
        _limb((0.105, -0.925, -0.06), (0.12, -0.935, 0.13), 0.035, 0.027),  # foot
        _blob((0.113, -0.93, 0.04), (0.042, 0.03, 0.07)),  # instep
        _blob((0.18, 0.43, -0.02), (0.06, 0.058, 0.058)),  # deltoid
        _limb((0.175, 0.44, -0.02), (0.435, 0.44, -0.035), 0.047, 0.036),  # upper arm
        _limb((0.435, 0.44, -0.035), (0.67, 0.44, -0.035), 0.037, 0.026),  # forearm
        _blob((0.752, 0.435, -0.035), (0.078, 0.02, 0.045)),  # hand
        _limb((0.69, 0.43, 0.0), (0.735, 0.43, 0.045), 0.013, 0.011),  # thumb
    ]
    return centre + left + [_mirror(p) for p in left]


# Torso cross-sections bottom to top: height y, half-width, half-depth, depth centre (m).
_TORSO_PROFILE = np.array(
    [
        [-0.15, 0.135, 0.085, -0.03],
        [-0.08, 0.160, 0.105, -0.025],
        [0.00, 0.158, 0.100, -0.015],
        [0.10, 0.138, 0.092, -0.005],
        [0.20, 0.148, 0.098, 0.0],
        [0.29, 0.160, 0.104, 0.0],
        [0.37, 0.158, 0.096, -0.01],
        [0.43, 0.135, 0.075, -0.02],
    ]
)


def _torso_sdf(p: np.ndarray) -> np.ndarray:
    """A lofted elliptic cylinder through `_TORSO_PROFILE` (smooth, monotone interpolation), with flat ends."""
    from scipy.interpolate import PchipInterpolator

    prof = _TORSO_PROFILE
    y0, y1 = prof[0, 0], prof[-1, 0]
    yc = np.clip(p[:, 1], y0, y1)
    rx, rz, cz = (PchipInterpolator(prof[:, 0], prof[:, k])(yc) for k in (1, 2, 3))
    side = (np.hypot(p[:, 0] / rx, (p[:, 2] - cz) / rz) - 1.0) * np.minimum(rx, rz)
    cap = np.maximum(y0 - p[:, 1], p[:, 1] - y1)
    return np.minimum(np.maximum(side, cap), 0.0) + np.hypot(np.maximum(side, 0.0), np.maximum(cap, 0.0))


def cone_sdf(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Signed distance of (P, 3) points to the capsule from `a` to `b` whose radius tapers from `ra` to `rb`."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + (rb - ra) * t)


def _ellipsoid_sdf(p: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (np.linalg.norm((p - c) / r, axis=1) - 1.0) * r.min()


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def body_sdf(points: np.ndarray, blend: float = 0.025) -> np.ndarray:
    """Approximate signed distance (m, negative inside) of the procedural body at (P, 3) points."""
    d = np.full(len(points), np.inf)
    for prim in _surface_primitives():
        if prim[0] == "torso":
            di = _torso_sdf(points)
        elif prim[0] == "cone":
            di = cone_sdf(points, *prim[1:])
        else:
            di = _ellipsoid_sdf(points, *prim[1:])
        d = di if not np.isfinite(d).any() else _smooth_min(d, di, blend)
    return d


def uniform_laplacian(faces: np.ndarray, nv: int):
    """(V, V) sparse row-normalised adjacency: `avg @ x` is each vertex's mean over its neighbours."""
    import scipy.sparse as sp

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(nv, nv)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return sp.diags(1.0 / np.maximum(deg, 1)) @ adj  # row-normalised neighbour average


def procedural_surface(spacing: float = 0.007, target_faces: int = 12_000) -> tuple[np.ndarray, np.ndarray]:
    """A closed, smooth body surface in the T-pose: (V, 3) float vertices and (F, 3) int faces.

    The smooth union of the primitives is sampled on a grid, meshed with marching cubes, smoothed (Taubin) and
    simplified (quadric decimation) to about `target_faces` triangles.
    """
    from skimage import measure

    lo = np.array([-0.9, -1.0, -0.2])
    hi = np.array([0.9, 0.82, 0.24])
    n = np.ceil((hi - lo) / spacing).astype(int) + 1
    axes = [lo[i] + spacing * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    sdf = np.concatenate([body_sdf(chunk) for chunk in np.array_split(grid, 16)]).reshape(n).astype(np.float32)
    verts, faces, _, _ = measure.marching_cubes(-sdf, level=0.0, spacing=(spacing,) * 3)
    verts = verts + lo
    return _simplify(verts, faces, target_faces)


def _simplify(verts: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    # Marching cubes can put two vertices at one point; merging them would pinch the surface, so keep them.
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces))
    mesh = mesh.simplify_quadric_decimation(target_number_of_triangles=target_faces)
    mesh.remove_unreferenced_vertices()
    mesh = mesh.filter_smooth_taubin(number_of_iterations=10)
    v = _unfold(np.asarray(mesh.vertices).copy(), np.asarray(mesh.triangles).astype(np.int64))
    f = np.asarray(mesh.triangles).astype(np.int64)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    if not (counts == 2).all():
        raise RuntimeError("the procedural body surface is not closed; change the primitives or the grid spacing")
    tri = v[f]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if volume < 0:  # outward normals
        f = f[:, ::-1].copy()
    return v, f


def _folded_faces(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces that meet a neighbour at more than 90 degrees (fold-overs left by simplification)."""
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    pairs = owner[order].reshape(-1, 2)  # a closed surface: every edge has exactly two faces
    dots = (normals[pairs[:, 0]] * normals[pairs[:, 1]]).sum(1)
    return np.unique(pairs[dots < 0])


def _unfold(verts: np.ndarray, faces: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Smooth the neighbourhoods of folded faces (vertex := mean of its neighbours) until none is left."""
    avg = uniform_laplacian(faces, len(verts))
    for _ in range(rounds):
        bad = _folded_faces(verts, faces)
        if len(bad) == 0:
            break
        near = np.zeros(len(verts))
        near[faces[bad].ravel()] = 1.0
        near = (avg @ near) > 0  # the fold's vertices and their neighbours
        verts[near] = (avg @ verts)[near]
    return verts
