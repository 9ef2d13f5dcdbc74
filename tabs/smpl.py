"""SMPL tab: shape and pose the body model (sliders, presets, skeleton, skinning heat map, export) and SMPLify."""

from __future__ import annotations

import gradio as gr

from pipelines.smpl.model_files import model_in_use

from .context import AppContext
from .smpl_pose import pose_panel
from .smpl_smplify import smplify_panel
from .widgets import LATEX

LESSON = r"""
**The body model.** SMPL describes a body by a template mesh $\bar T$ (6,890 vertices in the official model) that
three linear ingredients deform before skinning:

- *shape*: $T_S(\beta) = \bar T + \sum_k \beta_k S_k$, where each column $S_k$ of `shapedirs` moves every vertex
  a little (taller, heavier, ...), one standard deviation per unit of $\beta_k$;
- *joints*: the rest joints are a fixed linear function of the shaped vertices, $J(\beta) = \mathcal J\, T_S(\beta)$
  (`J_regressor`), so a taller body gets a taller skeleton automatically;
- *pose correctives*: $T_P = T_S + \sum_n \big(\mathrm{vec}(R(\theta)) - \mathrm{vec}(I)\big)_n P_n$ over the
  207 entries of the 23 non-root rotation matrices (`posedirs`), which fix elbow and knee collapse. The
  procedural body here has none (they are zero), so it is skinned by LBS alone.

**Linear blend skinning.** Each joint $j$ gets a rotation $R_j = \exp([\theta_j]_\times)$ from its axis-angle
$\theta_j$ (Rodrigues), relative to its parent $p(j)$ in the kinematic tree. Walking down the tree gives each
joint's world transform,
$$G_j = G_{p(j)} \begin{bmatrix} R_j & J_j - J_{p(j)} \\ 0 & 1 \end{bmatrix}, \qquad G_0 = \begin{bmatrix} R_0 & J_0 \\ 0 & 1 \end{bmatrix},$$
and, after removing the rest position, $G'_j = G_j \begin{bmatrix} I & -J_j \\ 0 & 1 \end{bmatrix}$. A vertex is moved
by the blend of its joints' transforms with its skinning weights $w_{ij}$ (`weights`, each row sums to 1):
$$v'_i = \Big(\sum_j w_{ij}\, G'_j\Big) \begin{bmatrix} t_{P,i} \\ 1 \end{bmatrix}.$$
Rotating one joint therefore moves only the vertices weighted to it or to its descendants (pick a joint in the
heat map to see its weights).

**SMPLify** recovers $\beta$, $\theta$ and the camera translation $t$ from 2D keypoints $x_i$ with confidences
$c_i$, for a pinhole camera $\Pi$ with focal length $f = 5000$ px and the principal point at the image centre. It
minimises
$$E = \sum_i c_i^2\, \rho_\sigma\big(\Pi(J_i(\beta, \theta) + t) - x_i\big) + \lambda_\theta^2 E_\theta(\theta)
+ \lambda_a^2 \sum_{\text{elbows, knees}} e^{2 s_i \theta_i} + \lambda_\beta^2 \lVert\beta\rVert^2,$$
with the Geman-McClure function $\rho_\sigma(r) = \sigma^2 r^2 / (\sigma^2 + r^2)$ ($\sigma = 100$ px), which stops
a wrong keypoint from dragging the fit; $E_\theta$ is the negative log-likelihood of the body pose under a Gaussian
mixture learnt from motion capture (the best component: $\min_k \tfrac12 (\theta-\mu_k)^\top \Sigma_k^{-1}
(\theta-\mu_k) - \log w_k + \tfrac12 \log|\Sigma_k|$), or, without that file, one Gaussian around a relaxed pose
whose standard deviations let knees and elbows bend only about their hinge axis. The exponential term punishes
elbows and knees bent backwards.

*Initialisation*: by similar triangles the depth is $t_z = f\, L_\text{3D} / L_\text{2D}$, the model's
shoulder-to-hip length over the keypoints'. *Stage 0* fits $t$ and the global orientation to the torso keypoints
only. Then four stages with $\lambda_\theta = 404, 404, 57.4, 4.78$, $\lambda_\beta = 100, 50, 10, 5$ and
$\lambda_a = 0.317\,\lambda_\theta$: the prior first holds the pose near the mean while the body turns and
scales into place, then lets the limbs follow the keypoints. We report the mean 2D error in pixels and, for
synthetic cases with known truth, the 3D joint error in mm after aligning the pelvis (MPJPE) and after the best
similarity transform (PA-MPJPE).
"""


def build(ctx: AppContext, tab: gr.Tab) -> None:
    with gr.Accordion("Lesson: SMPL, linear blend skinning and SMPLify", open=False):
        gr.Markdown(LESSON, latex_delimiters=LATEX)
    gr.Markdown(f"**Body model in use by default:** {model_in_use(ctx.models_dir)}.", elem_id="smpl-model-in-use")
    with gr.Tabs():
        with gr.Tab("Shape and pose"):
            live = pose_panel(ctx)
        with gr.Tab("SMPLify"):
            smplify_panel(ctx)
    # gr.Model3D in a tab that is not the first can render collapsed (gradio issue 7632): the viewers are drawn
    # again on select, by the live preview (which makes both body GLBs afresh).
    tab.select(live.fn, live.inputs, live.outputs, api_name=False)
