"""The Shading lab's texts: the lesson (rasterising, Lambert and Phong, soft blending, rotations, the point-set
exercise) and the lighting-terms formula."""

LESSON = r"""
**What a renderer does.** The *rasteriser* finds, for every pixel, the faces that cover it: their index
(`pix_to_face`), depth (`zbuf`), the pixel's barycentric coordinates $(b_0, b_1, b_2)$ inside each face
($b_i \ge 0$, $\sum_i b_i = 1$) and its signed distance to the face's edge. The *shader* turns these into a colour.
A hard rasteriser keeps the nearest face ($K = 1$); PyTorch3D's soft rasteriser keeps the $K$ nearest faces within
a blur radius, which makes edges differentiable.

**Lambert (diffuse).** A matte surface looks equally bright from every direction; its brightness follows the cosine
between the normal $\mathbf n$ and the direction to the light $\mathbf l$:
$$I_d = k_d \, L_d \, \max(0,\ \mathbf n \cdot \mathbf l).$$

**Phong.** Add a constant ambient term and a highlight around the mirror direction
$\mathbf r = 2(\mathbf n\cdot\mathbf l)\,\mathbf n - \mathbf l$, seen from the viewing direction $\mathbf v$:
$$C = \big(k_a L_a + k_d L_d \max(0, \mathbf n\cdot\mathbf l)\big)\odot c_\text{texture} + k_s L_s \max(0, \mathbf r\cdot\mathbf v)^{\alpha}.$$
$k_a, k_d, k_s$ are the material's reflectances, $L_a, L_d, L_s$ the light's colours, $\alpha$ the shininess. The
specular term is not multiplied by the texture, so highlights take the light's colour. A directional light has
the same $\mathbf l$ everywhere; an ambient light only contributes $k_a L_a$.

**Where lighting is evaluated.** *Flat*: once per face (face normal, face centre). *Gouraud*: at the vertices,
then colours are interpolated (cheap, but highlights smear or vanish between vertices). *Phong*: normals are
interpolated and lighting is computed per pixel.

**Soft blending.** Each of the $K$ faces gets a coverage probability $D_j = \operatorname{sigmoid}(-d_j/\sigma)$
from its squared distance $d_j$ to the pixel; colours are mixed with weights $D_j \exp(z_j/\gamma)$ (nearer faces
dominate as $\gamma \to 0$) plus the background, and the silhouette is $A = 1 - \prod_j (1 - D_j)$. The book uses
$\sigma = 10^{-4}$ and blur radius $\log(1/10^{-4} - 1)\,\sigma$, where $D_j$ falls to $10^{-4}$.

**Memory.** The soft rasteriser keeps $N \cdot H \cdot W \cdot K$ face slots. The lab estimates 48 bytes per slot
(4 images of $512^2$ with $K = 50$: about 2.3 GiB) and refuses, or lowers $K$ and then the size, when the estimate
exceeds the budget. The fragments alone take 28 bytes per slot; shading them takes several times more.

**Rotations.** A rotation vector $\boldsymbol\omega$ (axis times angle $\theta$) maps to a matrix by the exponential
map $R = \exp([\boldsymbol\omega]_\times) = I + \frac{\sin\theta}{\theta}[\boldsymbol\omega]_\times +
\frac{1-\cos\theta}{\theta^2}[\boldsymbol\omega]_\times^2$ (`so3_exp_map`), where the *hat* operator
$[\boldsymbol\omega]_\times$ is the skew matrix with $[\boldsymbol\omega]_\times \mathbf x = \boldsymbol\omega \times
\mathbf x$; `so3_log_map` inverts it. A unit quaternion $(\cos\frac\theta2, \sin\frac\theta2\,\mathbf u)$ and
three Euler angles describe the same rotation. `Transform3d` multiplies row vectors, $\mathbf x' = \mathbf x M$.

**The point-set exercise.** Given pairs $(\mathbf x_i, \mathbf y_i)$ with $\mathbf y_i = R\mathbf x_i + \mathbf t$,
minimise $\frac1N\sum_i \lVert R\mathbf x_i + \mathbf t - \mathbf y_i\rVert^2$ over $\mathbf t$ (and $\boldsymbol\omega$)
by SGD with momentum [lr 0.1, momentum 0.9, 200 steps, 5000 points].
"""

TERMS_FORMULA = r"""
$C = \underbrace{k_a L_a \odot c}_{\text{ambient}} + \underbrace{k_d L_d \max(0,\mathbf n\cdot\mathbf l)\odot c}_{\text{diffuse (Lambert)}}
+ \underbrace{k_s L_s \max(0,\mathbf r\cdot\mathbf v)^{\alpha}}_{\text{specular (Phong)}}$ + background where the
mesh does not (fully) cover the pixel. The images below are these terms after the same blending as the shader;
they add up to the render exactly.
"""
