"""GIRAFFE's Fréchet distance (`giraffe-fid`): generated images of a studio model against fresh procedural scenes.

With the operator's Inception weights (`pt_inception-2015-12-05-6726825d.pth` in the models dir, whose SHA-256 must
start with 6726825d, the torch hub convention) the features are torchmetrics' FID Inception (2048-d pool features),
so the number is an FID in the usual sense, on our procedural data. Without them the features are the studio's
documented random-conv encoder (pipelines/giraffe/frechet.py) and the number is labelled "procedural FD — not
comparable with published FID". Either way the same statistic is also computed for an untrained generator of the
same shape (the yardstick of the bars: a trained model should be far below it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from pipelines.core.device import resolve_device
from pipelines.core.events import Done, Event, Preview, Progress
from pipelines.core.headline import Headline
from pipelines.giraffe import checkpoints, evaluation, frechet, scenes
from pipelines.giraffe.generate import INCEPTION_FILE, checkpoint_path
from pipelines.giraffe.generator import Generator, sample_params

HEADLINE = (
    Headline("fd", "Fréchet distance", "", start_key="fd_untrained"),
    Headline("fd_ratio", "FD / untrained FD"),
)
INCEPTION_SHA256_PREFIX = "6726825d"
PAPER_FID = {"Cars 64 px (GIRAFFE paper)": 16.0}
"""A published figure shown as context only: it is on real photographs, with Inception features."""


@dataclass(frozen=True)
class Config:
    checkpoint: str = ""
    """'' is the shipped studio checkpoint; a file name in models_dir; or a path."""
    models_dir: Path | None = None
    """The operator's model folder: the Inception weights are looked for here."""
    n_samples: int = 1000
    """Images per set (the quick default 1k; the paper uses 20k)."""
    use_inception: bool = True
    """Use the operator's Inception weights when present and verified (else the procedural encoder)."""
    seed: int = 0
    """Seed of the data, the initial weights and the sampled scenes (the same seed, the same run)."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda[:N]."""
    out_dir: Path | None = None
    """Where the run writes its files (the app and the CLI set one per run)."""

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(n_samples=20_000)

    @classmethod
    def tiny(cls) -> Config:
        return cls(n_samples=16)


def sha256_prefix(path: Path, n: int = 8) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:n]


def inception_status(models_dir: Path | None) -> tuple[Path | None, str]:
    """(the verified Inception file or None, a sentence saying which features are used and why)."""
    if models_dir is None or not (Path(models_dir) / INCEPTION_FILE).is_file():
        return None, f"no {INCEPTION_FILE} in the models dir: {frechet.PROCEDURAL_LABEL}"
    path = Path(models_dir) / INCEPTION_FILE
    found = sha256_prefix(path)
    if found != INCEPTION_SHA256_PREFIX:
        return None, (f"{INCEPTION_FILE} has SHA-256 {found}..., not {INCEPTION_SHA256_PREFIX}...: it was not used; "
                      f"{frechet.PROCEDURAL_LABEL}")  # fmt: skip
    return path, "FID with the operator's Inception weights (hash verified), on procedural scenes"


class InceptionEncoder(torch.nn.Module):
    """torchmetrics' FID Inception (2048-d) from a verified weights file, read with weights_only=True first and
    handed to torch-fidelity as a re-saved copy of plain tensors (it reads files with weights_only=False)."""

    def __init__(self, path: Path, scratch: Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3  # optional heavy import, only on this path

        state = checkpoints.safe_load(path)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise checkpoints.CheckpointError(f"{path.name} is not a state dict of tensors.")
        copy = scratch / "inception-verified.pth"
        torch.save(state, copy)
        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=str(copy))  # fmt: skip

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images.clamp(0, 1) * 255).round().to(torch.uint8)).reshape(len(images), -1).float()


def real_images(generator: Generator, n: int, seed: int, device: torch.device) -> Iterator[Progress]:
    """`n` procedural scenes (N, 3, S, S) in [0, 1] drawn with a seed the training set never uses."""
    out = []
    for batch in scenes.scene_stream(generator.spec, n, seed + 500_000, device):
        out.append(batch.images.permute(0, 3, 1, 2))
        yield Progress(0, 3, {}, f"rendered {sum(len(o) for o in out)}/{n} reference scenes")
    return torch.cat(out)


def run(cfg: Config) -> Iterator[Event]:
    if not (2 <= cfg.n_samples <= 50_000):
        raise ValueError(f"The sample count must be 2 to 50,000, got {cfg.n_samples}.")
    if cfg.out_dir is None:
        raise ValueError("Config.out_dir must be set (the app and the CLI set one per run).")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    loaded = checkpoints.load_any(checkpoint_path(cfg))
    if loaded.source.startswith("official"):
        raise ValueError("An official model's FID needs its own data set's statistics, which are not here; the FD "
                         "panel measures studio models on the procedural scenes.")  # fmt: skip
    generator = checkpoints.make_generator(loaded, device)
    inception, how = inception_status(cfg.models_dir) if cfg.use_inception else (None, frechet.PROCEDURAL_LABEL)
    encoder = InceptionEncoder(inception, out_dir) if inception else frechet.ProceduralEncoder()
    encoder = encoder.to(device)
    real = yield from real_images(generator, cfg.n_samples, cfg.seed, device)
    real_stats = frechet.statistics(frechet.features_in_chunks(encoder, real))
    yield Progress(1, 3, {}, f"generating {cfg.n_samples} images")
    params = sample_params(generator.spec, cfg.n_samples, torch.Generator().manual_seed(cfg.seed + 1), device)
    fake = evaluation.render(generator, params)
    fd = frechet.frechet_distance(*frechet.statistics(frechet.features_in_chunks(encoder, fake)), *real_stats)
    yield Preview(1, image=evaluation.grid_picture(fake[:16]), caption="generated samples")
    yield Progress(2, 3, {}, "the same for an untrained generator of this shape")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        untrained = Generator(generator.spec).to(device).eval()
    fake0 = evaluation.render(untrained, params)
    fd0 = frechet.frechet_distance(*frechet.statistics(frechet.features_in_chunks(encoder, fake0)), *real_stats)
    metrics = {"fd": fd, "fd_untrained": fd0, "fd_ratio": fd / max(fd0, 1e-12), "n_samples": float(cfg.n_samples)}
    info = {"features": how, "model": loaded.source, "context": PAPER_FID,
            "label": "FID (Inception)" if inception else frechet.PROCEDURAL_LABEL}  # fmt: skip
    yield Done(metrics=metrics, files={}, info=info)
