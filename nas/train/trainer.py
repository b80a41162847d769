"""Supernet training with the sandwich rule and in-place distillation.

Each step trains a largest subnet on the labels, then a smallest and N random subnets on a teacher's soft
predictions (in-place distillation), accumulating gradients for one update. With `sandwich: families` the
extremes rotate over the block families step by step (all-conv, all-SSM, all-attention where a
stage allows the family), so every family is trained at its largest and smallest, and the teacher is the
family-largest subnet with the lowest label loss so far (the strongest); with `extremes` they are the space's
largest and smallest subnets every step, the largest being the teacher (the default).
The length is `steps`, or `epochs` of batches; given a time allowance, the run re-plans its length from its
measured step time so that it ends in time (the cosine schedule then decays over the shorter run).
Checkpoints every N steps hold the weights, optimizer, schedule and RNG states, so a resumed run
continues the same trajectory.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from nas.budget import Budget, Deadline
from nas.data import DataSplits
from nas.device import autocast, grad_scaler
from nas.progress import Cancelled, Reporter
from nas.schemas import TrainConfig
from nas.train.checkpoint import load_checkpoint, save_checkpoint
from search_spaces import HybridSupernet

CHECKPOINT = "train_checkpoint.pt"


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class Plan:
    """How many steps the run takes: planned from the config, shortened to fit a time allowance."""

    REPLAN_EVERY = 10  # steps between re-plans, once the first ones have been timed

    def __init__(self, total: int, deadline: Deadline | None):
        self.total, self.deadline = total, deadline
        self.shortened_from: int | None = None

    def replan(self, step: int, steps_timed: int, seconds: float) -> None:
        """After `steps_timed` steps of this attempt took `seconds`: fit the rest into what is left."""
        left = self.deadline.left() if self.deadline else None
        if left is None or steps_timed < self.REPLAN_EVERY or step % self.REPLAN_EVERY:
            return
        fits = step + int(left / (seconds / steps_timed))
        if fits < self.total:
            self.shortened_from = self.shortened_from or self.total
            self.total = max(step + 1, fits)


def distill_loss(student: Tensor, teacher_probs: Tensor) -> Tensor:
    return -(teacher_probs * F.log_softmax(student, dim=-1)).sum(-1).mean()


class Sandwich:
    """Which subnets a training step trains on the labels and at the small end, and which one teaches."""

    def __init__(self, supernet: HybridSupernet, cfg: TrainConfig):
        space = supernet.space
        self.families = space.families() if cfg.sandwich == "families" else [""]
        self.largest = {f: space.largest(f or None) for f in self.families}
        self.smallest = {f: space.smallest(f or None) for f in self.families}
        self.loss: dict[str, float] = {}  # each family-largest's label loss (moving average)

    def family(self, step: int) -> str:
        return self.families[step % len(self.families)]

    def record(self, family: str, loss: float) -> None:
        self.loss[family] = loss if family not in self.loss else 0.9 * self.loss[family] + 0.1 * loss

    def teacher(self, family: str) -> str:
        """The strongest family-largest subnet, once every family has a loss; until then this step's."""
        if len(self.loss) < len(self.families):
            return family
        return min(self.loss, key=lambda f: self.loss[f])


class BatchSampler:
    """Seeded random mini-batches whose generator state goes into checkpoints."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, min(batch_size, n)
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.gen)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state(self) -> dict:
        return {"gen": self.gen.get_state(), "order": self.order, "pos": self.pos}

    def load(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.order, self.pos = state["order"], int(state["pos"])


def train_supernet(
    supernet: HybridSupernet, data: DataSplits, cfg: TrainConfig, workdir: Path, reporter: Reporter | None = None,
    amp: torch.dtype | None = None, budget: Budget | None = None,
) -> dict[str, float]:
    """Train `supernet` on normalized `data` (both on one device) for the config's length, shortened to fit the
    training share of `budget` (which is credited with the seconds earlier attempts spent), resuming from
    workdir's checkpoint; forward passes in `amp` autocast when given. Returns the steps run, the last loss and
    the seconds all attempts spent training."""
    reporter = reporter or Reporter()
    device = data.x_train.device
    scaler = grad_scaler(device, amp)
    space = supernet.space
    plan = Plan(cfg.planned_steps(len(data.y_train)), None)
    opt = make_optimizer(supernet.parameters(), cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, plan.total))
    batches = BatchSampler(len(data.y_train), cfg.batch_size, cfg.seed)
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    step, earlier_seconds = 0, 0.0
    sandwich = Sandwich(supernet, cfg)
    ckpt_path = workdir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path)
    if ckpt is not None:
        supernet.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        batches.load(ckpt["batches"])
        rng.setstate(_tuple_state(ckpt["python_rng"]))
        torch.set_rng_state(ckpt["torch_rng"])
        sandwich.loss = {str(k): float(v) for k, v in ckpt.get("family_loss", {}).items()}
        step = int(ckpt["step"])
        plan.total = int(ckpt.get("total", plan.total))
        earlier_seconds = float(ckpt.get("seconds", 0.0))
        reporter.message(f"resumed supernet training from step {step}", step=step)
    if budget is not None:
        budget.spend_earlier(earlier_seconds)
        plan.deadline = budget.start("train")

    def checkpoint() -> None:
        save_checkpoint(ckpt_path, guard=reporter.holding, state={
            "model": supernet.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "batches": batches.state(), "python_rng": list(rng.getstate()), "torch_rng": torch.get_rng_state(),
            "step": step, "family_loss": dict(sandwich.loss), "total": plan.total,
            "seconds": earlier_seconds + time.perf_counter() - t_start,
        })

    reporter.phase("train", plan.total)
    if step:
        reporter.progress("train", step, plan.total, {})  # where the resumed run stands
    supernet.train()
    loss_avg = None
    t_start, seen, first_step = time.perf_counter(), 0, step
    while step < plan.total:
        if reporter.should_stop():
            checkpoint()
            raise Cancelled(f"cancelled at training step {step}")
        idx = batches.next()
        x, y = data.train_batch(idx)
        opt.zero_grad(set_to_none=True)
        family = sandwich.family(step)
        with autocast(device, amp):
            logits = supernet(x, sandwich.largest[family])
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        scaler.scale(loss).backward()
        teacher = F.softmax(logits.detach().float(), dim=-1)
        strongest = sandwich.teacher(family)
        if cfg.distill and strongest != family:
            with torch.no_grad(), autocast(device, amp):
                teacher = F.softmax(supernet(x, sandwich.largest[strongest]).float(), dim=-1)
        sandwich.record(family, loss.item())
        for arch in [sandwich.smallest[family]] + [space.sample(rng) for _ in range(cfg.random_subnets)]:
            with autocast(device, amp):
                out = supernet(x, arch).float()
                sub = distill_loss(out, teacher) if cfg.distill else F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
            scaler.scale(sub).backward()
        if cfg.grad_clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(supernet.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        step += 1
        seen += len(idx)
        loss_avg = loss.item() if loss_avg is None else 0.9 * loss_avg + 0.1 * loss.item()
        elapsed = time.perf_counter() - t_start
        before = plan.total
        plan.replan(step, step - first_step, elapsed)
        if plan.total < before and plan.shortened_from == before:
            reporter.message(f"supernet training shortened from {before} to {plan.total} steps to fit its share of "
                             "the time budget")
        reporter.progress("train", step, plan.total, {
            "loss": loss.item(), "loss_avg": loss_avg, "lr": float(sched.get_last_lr()[0]),
            "samples_per_s": seen / elapsed if elapsed > 0 else 0.0,
        })
        if step % cfg.checkpoint_every == 0 or step == plan.total:
            checkpoint()
    return {"steps": step, "loss": loss_avg or 0.0, "seconds": earlier_seconds + time.perf_counter() - t_start}


def _tuple_state(state) -> tuple:
    """random.setstate wants (version, tuple_of_ints, gauss) back from the list it was saved as."""
    version, internal, gauss = state
    return (int(version), tuple(int(v) for v in internal), gauss)
