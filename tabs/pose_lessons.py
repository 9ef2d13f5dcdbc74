"""The Pose tab's lesson: the look-at camera, soft silhouettes, the losses, coarse-to-fine fitting, pose errors and
tracking."""

LESSON = r"""
**The camera.** The camera sits at a point $c$ and looks at the object (at the origin) with +Y up; its world-to-view
rotation $R(c)$ follows from $c$ (PyTorch3D's `look_at_rotation`) and $T = -R^\top c$, so a world point maps to
$X_\text{view} = X_\text{world} R + T$. Only $c$ is learnt: three numbers, as in the book.

**Why a soft renderer.** A normal rasteriser gives each pixel to one face, so moving the camera a little changes the
image in jumps and the gradient is zero almost everywhere. The soft rasteriser keeps up to $K$ faces near each pixel
and turns the pixel's signed squared distance $d_j$ to face $j$ (negative inside) into a coverage probability
$$D_j = \operatorname{sigmoid}(-d_j/\sigma),\qquad A = 1 - \prod_{j} (1 - D_j),$$
where $A$ is the soft silhouette. Faces farther than the blur radius $r = \log(1/\varepsilon - 1)\,\sigma$ would add
less than $\varepsilon = 10^{-4}$ and are skipped [σ = 10⁻⁴, K = 100, 256 px in the book].

**Losses.** The *silhouette loss* compares the soft silhouette with the target mask $M$,
$L_\text{sil} = \operatorname{mean}_p (A_p - M_p)^2$. The *RGB loss* compares a soft Phong render with the target
image, $L_\text{rgb} = \operatorname{mean}_p \lVert I_p - I^\ast_p\rVert^2$, where the $K$ faces' shaded colours are
mixed with weights $\propto D_j\,e^{z_j/\gamma}$ (nearer faces dominate as $\gamma \to 0$) plus the background.
Colour helps when the silhouette alone is ambiguous (a symmetric outline) but needs the lighting to match.
Adam [lr 0.05] moves $c$ down the gradient of $w_\text{sil}L_\text{sil} + w_\text{rgb}L_\text{rgb}$.

**Fast on a CPU.** Coarse to fine: a few dozen cheap steps at 64 px find the basin, then 128 px refines. For the
silhouette the rasteriser here keeps, for each pixel, the $K$ faces *nearest the pixel* (covering faces first) —
all that $A$ depends on — so a small $K$ loses nothing, while keeping the $K$ nearest in depth (PyTorch3D's rule,
needed for shading) leaves holes unless $K$ is large. Its backward pass is plain tensor algebra. A stage ends when
its loss stops improving (patience), or when the silhouette IoU reaches a set value.

**Errors.** When the true pose is known: the rotation error is the geodesic angle
$\theta = \arccos\big((\operatorname{tr}(R_\text{est}^\top R_\text{true}) - 1)/2\big)$, and the distance error is
$\lVert c_\text{est} - c_\text{true}\rVert$ (the object is scaled to the unit sphere).

**Tracking.** In a video the object moves a little between frames, so each frame starts from the last frame's
estimate (a *warm start*) and needs only a few steps; a lost frame would drag the next ones with it, which is why the
per-frame error is tracked against a bound.
"""
