"""The training loop: ``train(recipe, run_dir)`` trains a recipe's network and returns a summary.

One step: the batch's loss terms (:class:`~training.train.objective.Objective`), their
λ-weighted total (:func:`training.losses.weighted_total`), an update of the network (Adam), and
for SPS-Net with L_adv an update of the motion discriminator on real motion windows against
the detached predictions. An epoch is ``iterations_per_epoch`` steps; after each, the learning
rates decay at ``lr_milestones`` (MultiStep), the network is validated every ``validate_every``
epochs (mean per-frame PA-MPJPE, mm), and ``latest.pt`` (and ``best.pt`` on a new best) are
written to the run folder. TensorBoard scalars go to ``run_dir/tb``.

Data order. Clips are drawn from an endless stream: pass ``p`` over the dataset is the
permutation of :class:`~torch.utils.data.DistributedSampler` at seed ``seed`` and epoch ``p``,
cut into this process's share; step ``i`` reads samples ``i·B … (i+1)·B − 1`` of the stream. A
resumed run starts the stream at the iteration it reached, so it sees the same batches.

Several GPUs: launched by ``torchrun``, each process trains on its share of every pass with
DistributedDataParallel over the objective; only rank 0 writes files and shows progress. Mixed
precision (autocast + gradient scaling) is used on CUDA only.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
)
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import MultiStepLR
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torch.utils.tensorboard import SummaryWriter

from meshcast.progress import progress_bar
from training.body import BodyModel, load_body_model
from training.data import landmark_clips, recorded_clips
from training.evaluation import metrics
from training.losses import weighted_total
from training.models import build_model
from training.models.motion_discriminator import MotionDiscriminator
from training.recipes import DataConfig, LandmarkDataConfig, Recipe, SPSNetConfig, TrainingConfig
from training.train.checkpoint import (
    BEST,
    LATEST,
    TrainingState,
    initialise_from,
    load_checkpoint,
    save_checkpoint,
)
from training.train.objective import (
    Batch,
    Motion,
    Objective,
    ObjectiveOutput,
    adversarial_term,
    clip_frames,
    discriminator_term,
    predict,
)

# Offsets of the seeds of the other random streams from the recipe's seed, so that the clip
# order, the motion-window order and the occlusions are independent of each other.
MOTION_SEED_OFFSET = 1
OCCLUSION_SEED_OFFSET = 2
TENSORBOARD_DIR = "tb"
VALIDATION_JOINT_SET = "lsp14"  # the papers' 14 evaluation joints, regressed from meshes

Validator = Callable[[nn.Module], float]


@dataclass(frozen=True)
class TrainingData:
    """The datasets of a run: ``train`` and ``val`` give :class:`~training.data.batch.Clip`
    items, ``motion`` gives real motion windows (``{"pose": (T, 72), "betas": (10,)}``)."""

    train: Dataset[Any]
    val: Dataset[Any] | None = None
    motion: Dataset[Any] | None = None


@dataclass(frozen=True)
class TrainingSummary:
    """What a call of :func:`train` did: the step and epoch it reached, the last step's loss
    terms (unweighted, plus ``total`` and ``discriminator``), and every validation figure."""

    run_dir: Path
    iterations: int
    epochs: int
    losses: dict[str, float]
    validation: dict[int, float] = field(default_factory=dict)  # epoch → PA-MPJPE (mm)
    best_validation: float | None = None


@dataclass(frozen=True)
class Process:
    """This process's place in a (possibly distributed) run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def writes(self) -> bool:
        return self.rank == 0


@dataclass
class Session:
    """Everything a running training holds."""

    recipe: Recipe
    schedule: TrainingConfig
    process: Process
    state: TrainingState
    objective: nn.Module  # the Objective, DDP-wrapped when distributed
    discriminator: nn.Module | None  # DDP-wrapped when distributed; state.discriminator is bare
    validate: Validator | None
    run_dir: Path


def train(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    max_iterations: int | None = None,
    device: str | None = None,
    data: TrainingData | None = None,
    body: BodyModel | str | None = None,
    validate: Validator | None = None,
) -> TrainingSummary:
    """Train ``recipe``'s network, writing checkpoints and TensorBoard logs to ``run_dir``.

    Args:
        recipe: a recipe with ``training`` (and ``data`` unless ``data`` is given).
        run_dir: the run's folder (``latest.pt``, ``best.pt``, ``tb/``).
        resume: continue from ``run_dir/latest.pt``, exactly where it stopped.
        max_iterations: stop once this many steps (counted from the run's start, resumed
            steps included) are done; default: ``epochs × iterations_per_epoch``.
        device: "cpu", "cuda" …; default CUDA when available. Under ``torchrun`` each process
            takes the GPU of its ``LOCAL_RANK``.
        data: the datasets; default: read from ``recipe.data``.
        body: the body model, or its name for :func:`~training.body.load_body_model`;
            default: the recipe's ``data.body`` (the body the data's SMPL parameters fit).
        validate: a function of the network giving the validation figure (lower is better);
            default: mean per-frame PA-MPJPE on ``data.val`` when there is a val set.

    Raises:
        ValueError: the recipe has no ``training`` (or no ``data`` and none is given), or
            ``run_dir`` already holds a run and ``resume`` is false.
        FileNotFoundError: ``resume`` and no ``latest.pt`` in ``run_dir``.
    """
    schedule = _schedule(recipe, data)
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    process = _start_process(device)
    try:
        _seed_everything(schedule.seed)
        if body is None:
            body = recipe.data.body if recipe.data else DataConfig.model_fields["body"].default
        body_model = load_body_model(body) if isinstance(body, str) else body
        if isinstance(recipe.data, LandmarkDataConfig):
            # Landmark data and the losses on joints need a few of the mesh's vertices only.
            body_model = body_model.restricted(landmark_clips.box_vertices(body_model))
        datasets = data or _read_datasets(recipe, schedule, body_model)
        body_model = body_model.to(process.device)
        if validate is None and datasets.val is not None:
            validate = _pa_mpjpe_validator(datasets.val, body_model, process, schedule)
        session = _start_session(recipe, schedule, process, body_model, validate, run_dir)
        if resume:
            load_checkpoint(run_dir / LATEST, session.state, recipe)
        return _run(session, datasets, max_iterations)
    finally:
        if process.world_size > 1:
            dist.destroy_process_group()


def _schedule(recipe: Recipe, data: TrainingData | None) -> TrainingConfig:
    if recipe.training is None:
        raise ValueError(f"recipe {recipe.name!r} has no 'training' section: it cannot train")
    if data is None and recipe.data is None:
        raise ValueError(f"recipe {recipe.name!r} has no 'data' section: nothing to train on")
    return recipe.training


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if not resume and (run_dir / LATEST).exists():
        raise ValueError(
            f"{run_dir} already holds a run; pass resume to continue it, or choose another folder"
        )


def _start_process(device: str | None) -> Process:
    """This process's device, and the process group when launched by ``torchrun``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world_size == 1:
        return Process(chosen)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(chosen)
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Process(chosen, dist.get_rank(), world_size)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global generator data readers may use)
    random.seed(seed)


def _read_datasets(recipe: Recipe, schedule: TrainingConfig, body: BodyModel) -> TrainingData:
    """The recipe's datasets: clips of its dataset files, or landmark clips made on the fly
    with ``body``; the readers are imported here, only when a run reads them."""
    from training.data.motion_windows import MotionWindows
    from training.data.video_clips import VideoClips

    assert recipe.data is not None  # checked by _schedule
    frames = clip_frames(recipe, schedule.clip_length)
    train: Dataset[Any]
    val: Dataset[Any] | None = None
    if isinstance(recipe.data, LandmarkDataConfig):
        config, seed = recipe.data, schedule.seed
        cache = Path(config.cache_dir) if config.cache_dir else None
        train = landmark_clips.LandmarkClips(
            config, frames, split="train", seed=seed, body=body, cache_dir=cache
        )
        val = landmark_clips.LandmarkClips(
            config, schedule.clip_length, split="val", seed=seed, body=body, cache_dir=cache
        )
        # Posed here, once, before data-loading workers fork (they share the arrays).
        train.posed, val.posed  # noqa: B018
        if config.recorded is not None and config.recorded_share > 0.0:
            share = config.recorded_share
            train = recorded_clips.with_recorded(train, config.recorded, share, frames, seed)
            if config.recorded_val is not None:
                length = schedule.clip_length
                val = recorded_clips.with_recorded(val, config.recorded_val, share, length, seed)
        motion_files: tuple[str, ...] = ()
    else:
        extra = frames - schedule.clip_length
        train = VideoClips.from_config(recipe.data, schedule, split="train", extra_frames=extra)
        if recipe.data.val:
            val = VideoClips.from_config(recipe.data, schedule, split="val")
        motion_files = recipe.data.motion
    motion = None
    if recipe.losses.adversarial != 0:
        motion = MotionWindows(motion_files, schedule.clip_length)
    return TrainingData(train, val, motion)


def _start_session(
    recipe: Recipe,
    schedule: TrainingConfig,
    process: Process,
    body: BodyModel,
    validate: Validator | None,
    run_dir: Path,
) -> Session:
    """Network, objective, discriminator, optimisers and schedulers, freshly initialised."""
    network = build_model(recipe)
    if schedule.init_from is not None:
        initialise_from(network, schedule.init_from)
    network = network.to(process.device)
    mixed_precision = schedule.mixed_precision and process.device.type == "cuda"
    occlusions = torch.Generator().manual_seed(schedule.seed + OCCLUSION_SEED_OFFSET)
    objective: nn.Module = Objective(
        recipe, network, body, occlusions, mixed_precision=mixed_precision
    )
    optimizer = torch.optim.Adam(
        [p for p in network.parameters() if p.requires_grad],
        lr=schedule.lr,
        weight_decay=schedule.weight_decay,
    )
    state = TrainingState(
        network=network,
        optimizer=optimizer,
        scheduler=_decay(optimizer, schedule),
        scaler=torch.amp.GradScaler(process.device.type, enabled=mixed_precision),
        occlusion_generator=occlusions,
    )
    discriminator = _add_discriminator(recipe, schedule, process, state)
    if process.world_size > 1:
        # Buffers (the body model's arrays, a frozen encoder's statistics) never change: no
        # need to broadcast them every step.
        objective = DistributedDataParallel(objective, broadcast_buffers=False)
        if discriminator is not None:
            discriminator = DistributedDataParallel(discriminator)
    return Session(recipe, schedule, process, state, objective, discriminator, validate, run_dir)


def _decay(optimizer: torch.optim.Optimizer, schedule: TrainingConfig) -> MultiStepLR:
    """×``lr_decay`` after each epoch of ``lr_milestones`` (MAED §4.2: ×0.1 at 60 and 90)."""
    return MultiStepLR(optimizer, list(schedule.lr_milestones), gamma=schedule.lr_decay)


def _add_discriminator(
    recipe: Recipe, schedule: TrainingConfig, process: Process, state: TrainingState
) -> nn.Module | None:
    """SPS-Net's motion discriminator D and its Adam (§4.1: its own learning rate) when L_adv
    is on. Its rate decays with the network's, keeping the ratio of the two (the paper does
    not say)."""
    if not isinstance(recipe.model, SPSNetConfig) or recipe.losses.adversarial == 0:
        return None
    discriminator = MotionDiscriminator(recipe.model.discriminator_hidden).to(process.device)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=schedule.lr_discriminator)
    state.discriminator = discriminator
    state.discriminator_optimizer = optimizer
    state.discriminator_scheduler = _decay(optimizer, schedule)
    return discriminator


class StreamSampler(Sampler[int]):
    """Endless indices: DistributedSampler's permutation of pass 0, 1, 2 … (this process's
    share of each), starting ``skip`` indices into the stream."""

    def __init__(self, dataset: Dataset[Any], seed: int, process: Process, skip: int) -> None:
        self.sampler: DistributedSampler[int] = DistributedSampler(
            dataset, process.world_size, process.rank, shuffle=True, seed=seed, drop_last=True
        )
        if len(self.sampler) == 0:
            raise ValueError(f"the dataset has fewer items than processes ({process.world_size})")
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        first_pass, offset = divmod(self.skip, len(self.sampler))
        for index in itertools.count(first_pass):
            self.sampler.set_epoch(index)
            yield from itertools.islice(iter(self.sampler), offset, None)
            offset = 0


def _batches(
    dataset: Dataset[Any], schedule: TrainingConfig, process: Process, seed: int, start: int
) -> Iterator[Batch]:
    """Endless batches on the device, from step ``start`` of the stream on."""
    loader = DataLoader(
        dataset,
        batch_size=schedule.batch_size,
        sampler=StreamSampler(dataset, seed, process, start * schedule.batch_size),
        num_workers=schedule.num_workers,
        pin_memory=process.device.type == "cuda",
        drop_last=True,
        # Workers' seeds come from this generator, not from torch's global one, whose state
        # the checkpoint restores: creating the loader must not draw from it.
        generator=torch.Generator().manual_seed(seed + start),
    )
    for batch in loader:
        yield {name: value.to(process.device, non_blocking=True) for name, value in batch.items()}


def _run(session: Session, datasets: TrainingData, max_iterations: int | None) -> TrainingSummary:
    """Epochs from where the state is to the end of the schedule (or ``max_iterations``)."""
    schedule, state = session.schedule, session.state
    last = schedule.epochs * schedule.iterations_per_epoch
    if max_iterations is not None:
        last = min(last, max_iterations)
    if session.discriminator is not None and datasets.motion is None:
        raise ValueError("L_adv is on but no motion dataset was given")
    losses: dict[str, float] = {}
    validation: dict[int, float] = {}
    with Reporter(session.run_dir, session.process, state.iteration, last) as reporter:
        while state.iteration < last:
            losses = _run_epoch(session, datasets, last, reporter)
            if state.iteration % schedule.iterations_per_epoch == 0:
                validation |= _end_epoch(session, reporter)
            else:  # stopped by max_iterations within the epoch
                _save(session, LATEST)
    best = state.best_validation if math.isfinite(state.best_validation) else None
    return TrainingSummary(session.run_dir, state.iteration, state.epoch, losses, validation, best)


def _run_epoch(
    session: Session, datasets: TrainingData, last: int, reporter: Reporter
) -> dict[str, float]:
    """The steps of the current epoch (up to step ``last``); the last step's losses.

    The loaders are made anew each epoch, after telling the datasets the epoch (their
    augmentation draws depend on it, also in worker processes that exist only from then on).
    """
    schedule, state, process = session.schedule, session.state, session.process
    end = min((state.epoch + 1) * schedule.iterations_per_epoch, last)
    for dataset in (datasets.train, datasets.motion):
        set_epoch = getattr(dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(state.epoch)
    clips = _batches(datasets.train, schedule, process, schedule.seed, state.iteration)
    motions = None
    if session.discriminator is not None and datasets.motion is not None:
        seed = schedule.seed + MOTION_SEED_OFFSET
        motions = _batches(datasets.motion, schedule, process, seed, state.iteration)
    losses: dict[str, float] = {}
    for batch in itertools.islice(clips, end - state.iteration):
        losses = train_step(session, batch, next(motions) if motions is not None else None)
        state.iteration += 1
        reporter.step(state, losses)
    return losses


def train_step(
    session: Session, batch: Batch, real: Mapping[str, Tensor] | None
) -> dict[str, float]:
    """One update of the network and, with L_adv, of the discriminator.

    Returns:
        The unweighted terms, ``total`` (weighted) and ``discriminator`` (D's loss, with L_adv).
    """
    output: ObjectiveOutput = session.objective(batch)
    terms = dict(output.terms)
    if output.motion is not None and session.state.discriminator is not None:
        terms["adversarial"] = adversarial_term(session.state.discriminator, output.motion)
    total = weighted_total(terms, session.recipe.losses)
    update_network(session.state, total)
    values = {name: term.item() for name, term in terms.items()} | {"total": total.item()}
    optimizer = session.state.discriminator_optimizer
    if output.motion is not None and real is not None and session.discriminator is not None:
        assert optimizer is not None  # made with the discriminator
        values["discriminator"] = update_discriminator(
            session.discriminator, optimizer, Motion(real["pose"], real["betas"]), output.motion
        )
    return values


def update_network(state: TrainingState, total: Tensor) -> None:
    """An Adam step of the network on ``total`` (scaled under mixed precision)."""
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(total).backward()
    state.scaler.step(state.optimizer)
    state.scaler.update()


def update_discriminator(
    discriminator: nn.Module, optimizer: torch.optim.Optimizer, real: Motion, fake: Motion
) -> float:
    """D's own Adam step (Eq. 7): real motion windows against the detached predictions."""
    optimizer.zero_grad(set_to_none=True)
    loss = discriminator_term(discriminator, real, fake)
    loss.backward()
    optimizer.step()
    return loss.item()


def _end_epoch(session: Session, reporter: Reporter) -> dict[int, float]:
    """Decay the rates, validate when due, write the checkpoints; the figure by epoch."""
    state = session.state
    state.epoch += 1
    state.scheduler.step()
    if state.discriminator_scheduler is not None:
        state.discriminator_scheduler.step()
    figures = {}
    if session.validate is not None and state.epoch % session.schedule.validate_every == 0:
        figure = session.validate(state.network)
        figures[state.epoch] = figure
        reporter.validation(state, figure)
        if figure < state.best_validation:
            state.best_validation = figure
            _save(session, BEST)
    _save(session, LATEST)
    return figures


def _save(session: Session, name: str) -> None:
    if session.process.writes:
        save_checkpoint(session.run_dir / name, session.state, session.recipe)


def _pa_mpjpe_validator(
    dataset: Dataset[Any], body: BodyModel, process: Process, schedule: TrainingConfig
) -> Validator:
    """Mean per-frame PA-MPJPE (mm) on ``dataset``'s frames with SMPL ground truth, the 14 LSP
    joints regressed from the predicted and the true mesh."""

    def validate(network: nn.Module) -> float:
        loader = DataLoader(dataset, batch_size=schedule.batch_size, generator=torch.Generator())
        errors = []
        network.eval()
        with torch.no_grad():
            for batch in loader:
                errors.append(_pa_mpjpe(network, body, batch, process.device))
        network.train()
        frames = np.concatenate(errors)
        return float(frames.mean()) if len(frames) else math.nan

    return validate


def _pa_mpjpe(
    network: nn.Module, body: BodyModel, batch: Mapping[str, Tensor], device: torch.device
) -> np.ndarray:
    """Per-frame PA-MPJPE ``(N,)`` of the frames of ``batch`` that have SMPL ground truth."""
    batch = {name: value.to(device) for name, value in batch.items()}
    out = predict(network, batch)
    has_smpl = batch["has_smpl"].bool()
    if not has_smpl.any():
        return np.empty(0)
    predicted = body(out["rotmat"][has_smpl], out["betas"][has_smpl]).vertices
    true = body(batch["pose"][has_smpl], batch["betas"][has_smpl]).vertices
    joints = [body.regress_joints(v, VALIDATION_JOINT_SET).cpu().numpy() for v in (predicted, true)]
    return metrics.pa_mpjpe(*joints)


class Reporter:
    """TensorBoard scalars and a rich progress bar, on the process that writes (rank 0)."""

    def __init__(self, run_dir: Path, process: Process, done: int, total: int) -> None:
        self.writer = SummaryWriter(run_dir / TENSORBOARD_DIR) if process.writes else None
        self.progress = progress_bar(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]:.4g}"),
            disable=not process.writes,
        )
        self.task = self.progress.add_task("training", total=total, completed=done, loss=math.nan)

    def __enter__(self) -> Reporter:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()
        if self.writer is not None:
            self.writer.close()

    def step(self, state: TrainingState, losses: dict[str, float]) -> None:
        self.progress.update(self.task, advance=1, loss=losses["total"])
        if self.writer is None:
            return
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, state.iteration)
        self.writer.add_scalar("lr/network", state.optimizer.param_groups[0]["lr"], state.iteration)
        if state.discriminator_optimizer is not None:
            rate = state.discriminator_optimizer.param_groups[0]["lr"]
            self.writer.add_scalar("lr/discriminator", rate, state.iteration)

    def validation(self, state: TrainingState, figure: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("val/pa_mpjpe_mm", figure, state.iteration)
