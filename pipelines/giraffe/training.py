"""One GIRAFFE training step and the training state: non-saturating GAN loss, R1 on real images, RMSprop, and an
exponential moving average of the generator (the one that renders and is evaluated).

As in the official trainer, the generator steps first (its loss -log D(G(z)) through a frozen discriminator),
then the discriminator (softplus losses on real and fake, plus gamma * E ||grad_x D(x_real)||^2). To save a
forward pass on the CPU, the discriminator sees the generator step's fake batch (detached), rendered by the
generator just before its update. Under torchrun each rank takes its shard of one global batch drawn from a
shared seed and gradients are summed across ranks (losses are divided by the global batch size).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipelines.core import ddp
from pipelines.giraffe.generator import Generator, GeneratorSpec, SceneParams
from pipelines.giraffe.networks2d import DCDiscriminator


@dataclass
class GanState:
    """Networks, optimisers and the step count of one training run."""

    generator: Generator
    generator_test: Generator
    discriminator: DCDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: int = 0


def build_state(
    spec: GeneratorSpec, d_feat: int, lr_g: float, lr_d: float, seed: int, device: torch.device
) -> GanState:
    """Fresh networks initialised from `seed` (PyTorch's default initialisers, drawn on the CPU), the EMA copy, and
    RMSprop optimisers with the official learning rates' roles (G 5e-4, D 1e-4 by default)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(spec)
        discriminator = DCDiscriminator(spec.image_size, d_feat)
    generator, discriminator = generator.to(device), discriminator.to(device)
    generator_test = copy.deepcopy(generator).requires_grad_(False)
    opt_g = torch.optim.RMSprop(generator.parameters(), lr=lr_g, alpha=0.99, eps=1e-8)
    opt_d = torch.optim.RMSprop(discriminator.parameters(), lr=lr_d, alpha=0.99, eps=1e-8)
    return GanState(generator, generator_test, discriminator, opt_g, opt_d)


def r1_penalty(d_real: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """Per-image squared gradient norm of D at the real images (B,), kept in the graph for the backward pass."""
    (grad,) = torch.autograd.grad(d_real.sum(), x_real, create_graph=True)
    return grad.pow(2).reshape(len(x_real), -1).sum(1)


@torch.no_grad()
def update_average(target: nn.Module, source: nn.Module, beta: float) -> None:
    """target <- beta target + (1 - beta) source, parameter by parameter (buffers are copied)."""
    for p_t, p_s in zip(target.parameters(), source.parameters()):
        p_t.lerp_(p_s, 1.0 - beta)
    for b_t, b_s in zip(target.buffers(), source.buffers()):
        b_t.copy_(b_s)


def gan_step(
    state: GanState,
    real: torch.Tensor,
    fake_params: SceneParams,
    noise: torch.Generator,
    *,
    n_global: int,
    r1_gamma: float,
    ema_beta: float,
    dist: ddp.Dist,
) -> dict[str, torch.Tensor]:
    """One generator step then one discriminator step on this rank's shard: `real` (b, 3, S, S) and `fake_params`
    (b scenes) of a global batch of `n_global`. Returns detached losses (this rank's share; sum over ranks)."""
    g, d = state.generator, state.discriminator
    g.train()
    d.requires_grad_(False)
    g.requires_grad_(True)
    state.opt_g.zero_grad(set_to_none=True)
    x_fake = g(fake_params, noise)
    loss_g = F.softplus(-d(x_fake)).sum() / n_global  # BCE with target 1
    loss_g.backward()
    dist.all_reduce_grads(g.parameters())
    state.opt_g.step()
    update_average(state.generator_test, g, ema_beta)

    g.requires_grad_(False)
    d.requires_grad_(True)
    state.opt_d.zero_grad(set_to_none=True)
    x_real = real.detach().requires_grad_(True)
    d_real = d(x_real)
    loss_real = F.softplus(-d_real).sum() / n_global
    reg = r1_gamma * r1_penalty(d_real, x_real).sum() / n_global
    loss_fake = F.softplus(d(x_fake.detach())).sum() / n_global  # BCE with target 0
    (loss_real + reg + loss_fake).backward()
    dist.all_reduce_grads(d.parameters())
    state.opt_d.step()
    g.requires_grad_(True)
    state.step += 1
    return {
        "loss_g": loss_g.detach(),
        "loss_d": (loss_real + loss_fake).detach(),
        "r1": reg.detach(),
        "d_real": d_real.detach().sum() / n_global,
    }


# --- checkpoints: plain tensors and plain values, so they load with weights_only=True ---------------------------


STUDIO_FORMAT = "3d-studio-giraffe"
STUDIO_VERSION = 1


def state_payload(state: GanState, spec_json: str, extra: dict) -> dict:
    """A checkpoint: the three networks' state dicts (official names), both optimisers, the step, the generator
    spec as JSON, and `extra` plain values (config, RNG states as uint8 tensors, metrics)."""
    return {
        "format": STUDIO_FORMAT,
        "version": STUDIO_VERSION,
        "spec": spec_json,
        "step": state.step,
        "generator": state.generator.state_dict(),
        "generator_test": state.generator_test.state_dict(),
        "discriminator": state.discriminator.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        **extra,
    }
