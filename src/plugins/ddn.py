"""Learned soft labels trained by bi-level optimisation: Data-Distill-Net (``ddn``) and per-slot logits (``l2y``).

Outer step (every ``ddn.every`` inner steps, from the second task on), before the real step:
  theta_{k+1} = theta_k - eta * grad_theta L_inner(theta_k, omega)      k = 0..K-1 (virtual, not applied)
  L_outer     = CE(f_{theta_K}(x_val), y_val)                            hard labels
  omega      <- Adam(omega, dL_outer/domega)                             one manual_backward
  omega_bar  <- beta * omega_bar + (1 - beta) * omega                    (ddn: the EMA cache)
The real inner step uses the soft labels of the cache (ddn) or of the current slot logits (l2y), detached.
See docs/method.md for the equations, defaults and why.
"""
from __future__ import annotations

import abc
import copy
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from src.distributed import rank_world
from src.methods.base import StepBatch, StepContext, cross_entropy
from src.models.backbones import frozen_norm_stats
from src.plugins.labels import LabelPlugin, restrict_to_seen

if TYPE_CHECKING:
    from src.learner import ContinualLearner


class LabelNet(nn.Module):
    """G_omega: MLP over (representation, one-hot label) -> scores over all classes.

    soft label = (1 - mix) * one_hot(y) + mix * softmax over allowed classes of (MLP(input) + init_margin *
    one_hot(y)). The last layer starts at zero, so at initialisation the soft label is (almost) the hard
    label, and switching DDN on cannot hurt at step 0. ``mix`` < 1 bounds how far the label can move from
    the hard one (true-class mass >= 1 - mix: below 0.5 the argmax can never flip); 1 is the paper.
    ``norm`` standardises each input representation (layer norm without parameters) first, so the label of
    a sample does not drift only because the backbone's feature scale does. ``class_input=False`` leaves the
    one-hot label out of the MLP's input (it still sets the initial margin), so G can only tell classes apart
    through the representation.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: list[int], init_margin: float,
                 mix: float = 1.0, norm: bool = False, class_input: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim + (n_classes if class_input else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        last = nn.Linear(width, n_classes)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)
        self.n_classes, self.init_margin, self.mix, self.norm = n_classes, init_margin, mix, norm
        self.class_input = class_input

    def forward(self, rep: Tensor, y: Tensor, allowed: Tensor) -> Tensor:
        onehot = F.one_hot(y, self.n_classes).to(rep.dtype)
        if self.norm:
            rep = F.layer_norm(rep, rep.shape[1:])
        scores = self.mlp(torch.cat([rep, onehot], 1) if self.class_input else rep) + self.init_margin * onehot
        probs = restrict_to_seen(scores, allowed)
        return probs if self.mix == 1.0 else (1 - self.mix) * onehot + self.mix * probs


def analytic_hypergrad_fix(scope: str, unroll_steps: int) -> str | None:
    """What to change so that ``ddn.hypergrad=analytic`` applies (None: it does): the closed form is the
    one-step head-scope hypergradient."""
    if scope != "head" or unroll_steps != 1:
        return ("the closed form covers one head-scope virtual step: set ddn.unroll_scope=head ddn.unroll_steps=1, "
                "or ddn.hypergrad=autograd")
    return None


class BilevelLabels(LabelPlugin):
    """Shared outer step of the learned variants; subclasses say how labels come from their parameters."""

    warn_flips = True

    def __init__(self, opts: DictConfig, n_classes: int, classes_per_task: int, seed: int,
                 frozen: bool = False) -> None:
        super().__init__()
        self.every, self.unroll_steps, self.scope = opts.every, opts.unroll_steps, opts.unroll_scope
        self.first_order, self.val_source = opts.first_order, opts.val_source
        self.hypergrad = opts.get("hypergrad", "autograd")
        if self.hypergrad == "analytic" and (fix := analytic_hypergrad_fix(self.scope, self.unroll_steps)):
            raise ValueError(f"ddn.hypergrad=analytic: {fix}")  # built outside the config check
        self.val_batch_size, self.val_balanced = opts.val_batch_size, opts.get("val_balanced", False)
        self.old_to_old, self.own_task, self.frozen = opts.old_to_old, opts.get("own_task", False), frozen
        self.per_step, self.boundary_iters = opts.per_step, opts.boundary_iters
        self.boundary_steps = 0
        self.n_classes, self.classes_per_task = n_classes, classes_per_task
        self.generator = torch.Generator().manual_seed(seed + 31337)  # validation draws: not the replay RNG
        self.outer_lr = opts.lr
        self.outer_optimizer: torch.optim.Optimizer | None = None
        self.last_outer_loss: Tensor | None = None
        self.outer_steps = 0
        self.center_hypergrad = opts.get("center_hypergrad", False)
        self._hyper: dict[str, Tensor] = {}
        self._hyper_sum: dict[str, Tensor] = {}
        self._hyper_n = 0

    # -- what subclasses provide
    @abc.abstractmethod
    def learnable(self) -> list[nn.Parameter]:
        """The parameters the outer step trains."""

    @abc.abstractmethod
    def live_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        """Soft labels that carry the gradient to the learnable parameters (outer step)."""

    @abc.abstractmethod
    def cached_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        """Soft labels for the real inner step (no gradient)."""

    def after_outer(self) -> None:
        """After each omega update (ddn: EMA cache)."""

    # -- shared machinery
    def optimizer(self) -> torch.optim.Optimizer:
        if self.outer_optimizer is None:
            # foreach: a handful of multi-tensor ops instead of ~10 per parameter (the same arithmetic)
            self.outer_optimizer = torch.optim.Adam(self.learnable(), lr=self.outer_lr, foreach=True)
        return self.outer_optimizer

    def get_extra_state(self) -> dict:
        return {"generator": self.generator.get_state(), "outer_steps": self.outer_steps,
                "boundary_steps": self.boundary_steps, "optimizer": self.optimizer().state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.outer_steps, self.boundary_steps = state["outer_steps"], state["boundary_steps"]
        self.optimizer().load_state_dict(state["optimizer"])

    def allowed_classes(self, draw: StepBatch, ctx: StepContext) -> Tensor:
        """(B, C) bool: seen classes; with ``old_to_old`` old-task samples only get old-task classes; with
        ``own_task`` every sample only gets the classes of its own task (no label mass crosses a task)."""
        if self.own_task:
            task_of_class = torch.arange(self.n_classes, device=draw.task.device) // self.classes_per_task
            return task_of_class[None] == draw.task[:, None]
        allowed = ctx.seen_classes[None].expand(len(draw.y), -1).clone()
        if self.old_to_old and ctx.task > 0:
            old = draw.task < ctx.task
            allowed[old, ctx.task * self.classes_per_task:] = False
        return allowed

    def representation(self, draw: StepBatch, feats: Tensor) -> Tensor:
        """What the label parameters see of a buffer sample (default: its penultimate features)."""
        return feats

    @torch.no_grad()
    def soft_labels(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        """The labels the inner step trains ``draw`` towards (from the cache), given its penultimate features."""
        return self.cached_labels(self.representation(draw, features), draw, self.allowed_classes(draw, ctx))

    def targets(self, features: Tensor, draw: StepBatch, ctx: StepContext) -> Tensor:
        return self._record(self.soft_labels(features, draw, ctx), draw.y, ctx)

    def _pick(self, candidates: Tensor, labels: Tensor, k: int) -> Tensor:
        if len(candidates) == 0:
            return candidates
        if not self.val_balanced:
            return candidates[torch.randperm(len(candidates), generator=self.generator)[:k]]
        picked = []
        classes = labels[candidates].unique()
        per_class = max(1, math.ceil(k / len(classes)))
        for c in classes.tolist():
            pool = candidates[labels[candidates] == c]
            picked.append(pool[torch.randperm(len(pool), generator=self.generator)[:per_class]])
        return torch.cat(picked)

    def validation_batch(self, learner: ContinualLearner, stream: StepBatch, draws: list[StepBatch],
                         ctx: StepContext) -> tuple[int, StepBatch] | None:
        """Hard-labelled batch for L_outer, as (number of leading stream samples, batch).

        ``stream_buffer`` (the paper): the current stream batch together with buffer samples of earlier
        tasks (M_{n-1} u T_n). ``heldout_buffer``: buffer samples (any task) not in this step's replay
        draws, so the inner step has not just trained on them.
        """
        buf = learner.buffer
        n = len(buf)
        slots = torch.arange(n)
        labels = buf.labels[:n].cpu()
        if self.val_source == "stream_buffer":
            chosen = self._pick(slots[buf.task_ids[:n].cpu() < ctx.task], labels, self.val_batch_size)
            parts = [stream]
        else:  # heldout_buffer
            used = torch.zeros(n, dtype=torch.bool)
            for d in draws:
                used[d.slots.cpu()] = True
            chosen = self._pick(slots[~used], labels, self.val_batch_size)
            parts = []
        if len(chosen):
            d = buf.gather(chosen)
            parts.append(StepBatch(learner.preprocess(d.x), d.y, d.task))
        if not parts:
            return None
        n_stream = len(stream.y) if self.val_source == "stream_buffer" else 0
        return n_stream, StepBatch(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]),
                                   torch.cat([p.task for p in parts]))

    def maybe_outer_step(self, learner: ContinualLearner, stream: StepBatch, draws: list[StepBatch],
                         ctx: StepContext, step: int, feats: list[Tensor] | None = None) -> None:
        if self.frozen or not self.per_step or ctx.task == 0 or step % self.every:
            return
        val = self.validation_batch(learner, stream, draws, ctx)
        if val is None:
            return
        loss = self.outer_loss(learner, stream, draws, val, ctx, learner.lr, feats)
        opt = self.optimizer()
        opt.zero_grad()
        learner.manual_backward(loss)  # one backward: under DDP the hypergradient is averaged over ranks
        opt.step()
        self.after_outer()
        self.outer_steps += 1
        self.last_outer_loss = loss.detach()  # read only when summarised (no sync per step)

    def end_task(self, learner: ContinualLearner, stream, task: int) -> None:
        """Distillation at the task boundary: ``ddn.boundary_iters`` outer iterations over M_{n-1} u T_n,
        each on a fresh batch of task n's training data and fresh replay draws (dataset-distillation
        style), after the task's per-step updates (or instead of them with ``ddn.per_step=false``)."""
        if self.frozen or task == 0 or self.boundary_iters <= 0 or learner.buffer is None:
            return
        ctx = learner.context()
        idx = stream.train_indices(task)
        bs = learner.buffer_batch_size
        opt = self.optimizer()
        dist = torch.distributed
        world = rank_world()[1]
        for _ in range(self.boundary_iters):
            pick = idx[torch.randperm(len(idx), generator=self.generator)[:bs]]
            x = stream.train_x[pick].to(learner.device)
            batch = StepBatch(learner.preprocess(x), stream.train_y[pick].to(learner.device),
                              stream.train_task[pick].to(learner.device))
            draws = []
            for _ in range(learner.method.num_draws):
                d = learner.buffer.sample(bs, generator=self.generator)
                draws.append(StepBatch(learner.preprocess(d.x), d.y, d.task, d.logits, d.slots))
            val = self.validation_batch(learner, batch, draws, ctx)
            if val is None or not draws:
                return
            with torch.enable_grad():
                loss = self.outer_loss(learner, batch, draws, val, ctx, learner.lr)
                opt.zero_grad()
                loss.backward()
            if world > 1:  # outside Lightning's DDP wrapper: average the hypergradient by hand
                for p in self.learnable():
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            opt.step()
            self.after_outer()
            self.boundary_steps += 1
            self.last_outer_loss = loss.detach()  # read only when summarised (no sync per step)

    def outer_loss(self, learner: ContinualLearner, stream: StepBatch, draws: list[StepBatch],
                   val: tuple[int, StepBatch], ctx: StepContext, lr: float,
                   feats: list[Tensor] | None = None) -> Tensor:
        """L_outer after K virtual steps (step size ``lr``) of the method's inner loss (+ alpha * soft CE).

        ``feats``: detached features of [stream, *draws] at the current parameters, when the caller has
        them (the training step does); otherwise they are computed here.
        """
        net = learner.net
        n_stream, val_batch = val
        xs = [stream.x, *(d.x for d in draws)]
        li = learner.method.label_draw
        with frozen_norm_stats(net):  # the virtual forwards must not move the real BatchNorm statistics
            if feats is None:
                with torch.no_grad():
                    feats = learner.batched(net.features, xs)
            soft = self.live_labels(self.representation(draws[li], feats[1 + li]), draws[li],
                                    self.allowed_classes(draws[li], ctx))
            if soft.requires_grad and self.hypergrad != "analytic":  # the analytic path records it itself
                held, y_draw = soft.detach(), draws[li].y
                soft.register_hook(lambda g: self._on_hypergrad(g, held, y_draw))

            if self.scope == "head":
                with torch.no_grad():
                    rest = val_batch.x[n_stream:]
                    val_feats = torch.cat([feats[0][:n_stream], net.features(rest)]) if len(rest) else feats[0]
                theta = dict(net.head.named_parameters())

                def inner_logits(th: dict[str, Tensor]) -> list[Tensor]:
                    return [functional_call(net.head, th, (f,)) for f in feats]

                def val_logits(th: dict[str, Tensor]) -> Tensor:
                    return functional_call(net.head, th, (val_feats,))
            else:
                theta = dict(net.named_parameters())

                def inner_logits(th: dict[str, Tensor]) -> list[Tensor]:
                    return learner.batched(lambda x: functional_call(net, th, (x,)), xs)

                def val_logits(th: dict[str, Tensor]) -> Tensor:
                    return functional_call(net, th, (val_batch.x,))

            if self.hypergrad == "analytic":  # head scope, K = 1 (refused otherwise in __init__)
                return self._analytic_outer_loss(learner, stream, draws, ctx, soft, feats, val_feats,
                                                 val_batch.y, lr)
            theta_k = self.unroll(theta, inner_logits, lambda logits: sum(
                learner.inner_loss(logits, stream, draws, ctx, soft).values()), lr)
            return cross_entropy(val_logits(theta_k), val_batch.y)

    def _analytic_outer_loss(self, learner: ContinualLearner, stream: StepBatch, draws: list[StepBatch],
                             ctx: StepContext, soft: Tensor, feats: list[Tensor], val_feats: Tensor,
                             val_y: Tensor, lr: float) -> Tensor:
        """The one-step head-scope outer loss with its hypergradient in closed form (``ddn.hypergrad=analytic``).

        The labels s enter the inner loss only through alpha * mean_i CE(z_i, s_i) on the label draw's logits z,
        whose gradient in z is p_i * sum(s_i) - s_i. So d theta' / d s_ic = -lr * alpha / B * J_i^T (p_i - e_c)
        and dL_outer / d s_ic = -lr * alpha / B * v_i . (p_i - e_c), with G = dL_outer / d theta' and v_i = J_i G
        the change of z_i along G (one forward-mode product). Equal to the autograd value up to rounding
        (tests), without the second-order graph: two first-order head backwards and one JVP.
        Returns a tensor whose value is L_outer and whose gradient in omega is that hypergradient.
        """
        head = learner.net.head
        names, params = zip(*head.named_parameters())
        li = learner.method.label_draw
        held = soft.detach()
        with torch.enable_grad():
            th = [p.detach().requires_grad_() for p in params]
            logits = [functional_call(head, dict(zip(names, th)), (f,)) for f in feats]
            inner = sum(learner.inner_loss(logits, stream, draws, ctx, held).values())
            grads = torch.autograd.grad(inner, th, allow_unused=True)
            th1 = [(t - lr * g if g is not None else t).detach().requires_grad_() for t, g in zip(th, grads)]
            outer = cross_entropy(functional_call(head, dict(zip(names, th1)), (val_feats,)), val_y)
            outer_grad = torch.autograd.grad(outer, th1)
        if isinstance(head, nn.Linear):  # linear in its parameters: J_i G is the head applied with G
            v = F.linear(feats[1 + li], *outer_grad)
        else:
            _, v = torch.func.jvp(lambda *ps: functional_call(head, dict(zip(names, ps)), (feats[1 + li],)),
                                  tuple(p.detach() for p in params), outer_grad)
        p = logits[1 + li].detach().softmax(1)
        hyper = (lr * learner.alpha / len(held)) * (v - (v * p).sum(1, keepdim=True))
        hyper = self._on_hypergrad(hyper, held, draws[li].y)
        surrogate = (soft * hyper).sum()  # d surrogate / d omega = the hypergradient through the label network
        return outer.detach() + surrogate - surrogate.detach()

    def _on_hypergrad(self, grad: Tensor, soft: Tensor, y: Tensor) -> Tensor:
        """dL_outer / d(soft label), one row per replayed sample: record how much of it is one push shared by
        the whole draw (``hypergrad_common_share``: |mean_i g_i|^2 / mean_i |g_i|^2, 1 = every sample is pushed
        the same way, ~1/B = independent pushes) and the share of samples pushed away from their own class;
        with ``ddn.center_hypergrad`` pass on only the per-sample part (g_i - mean_j g_j)."""
        g = grad.detach().float()
        common = g.mean(0).pow(2).sum() / g.pow(2).sum(1).mean().clamp_min(1e-30)
        # a gradient step moves s_i along -(g_i - <s_i, g_i>) on the simplex; its true-class component:
        true_push = -(g.gather(1, y[:, None]).squeeze(1) - (soft * g).sum(1))
        # kept as tensors: read (one device sync) only when logged or summarised, not on every outer step
        self._hyper = {"hypergrad_common_share": common, "hypergrad_away_from_true": (true_push < 0).float().mean()}
        self._hyper_sum = {k: self._hyper_sum.get(k, 0.0) + v for k, v in self._hyper.items()}
        self._hyper_n += 1
        return grad - grad.mean(0, keepdim=True) if self.center_hypergrad else grad

    def unroll(self, theta: dict[str, Tensor], inner_logits: Callable[[dict[str, Tensor]], list[Tensor]],
               inner_loss: Callable[[list[Tensor]], Tensor], lr: float) -> dict[str, Tensor]:
        """K virtual SGD steps. The start point is detached (only omega receives the hypergradient).

        ``first_order`` treats d theta_k / d theta_{k-1} as the identity (drops the Hessian terms); the
        mixed term d^2 L / d theta d omega, the only path from omega to theta, always stays. At K = 1 both
        modes give the same, exact, hypergradient.
        """
        th = {n: t.detach().requires_grad_() for n, t in theta.items()}
        names = list(th)
        for _ in range(self.unroll_steps):
            at = {n: th[n].detach().requires_grad_() for n in names} if self.first_order else th
            loss = inner_loss(inner_logits(at))
            grads = torch.autograd.grad(loss, [at[n] for n in names], create_graph=True, allow_unused=True)
            th = {n: th[n] - lr * g if g is not None else th[n] for n, g in zip(names, grads)}
        return th

    def summary(self) -> dict[str, float]:
        out = super().summary()
        out.update(outer_steps=self.outer_steps, boundary_steps=self.boundary_steps,
                   last_outer_loss=float("nan") if self.last_outer_loss is None else float(self.last_outer_loss))
        out.update({k: float(v) / self._hyper_n for k, v in self._hyper_sum.items()} if self._hyper_n else {})
        return out

    def diagnostics(self) -> dict[str, float]:
        out = super().diagnostics()
        if self.last_outer_loss is not None:
            out["outer_loss"] = float(self.last_outer_loss)
        out.update({k: float(v) for k, v in self._hyper.items()})
        return out


class DDNLabels(BilevelLabels):
    """Data-Distill-Net: one label network shared by all buffer samples, with an EMA cache (beta)."""

    def __init__(self, opts: DictConfig, rep_dim: int, n_classes: int, classes_per_task: int, beta: float,
                 seed: int, image_input: bool, frozen: bool = False) -> None:
        super().__init__(opts, n_classes, classes_per_task, seed, frozen)
        g = torch.get_rng_state()
        torch.manual_seed(seed + 2024)  # own init stream: the classifier init is the same with and without DDN
        self.label_net = LabelNet(rep_dim, n_classes, list(opts.hidden), opts.init_margin, opts.label_mix,
                                  opts.get("input_norm", False), opts.get("class_input", True))
        torch.set_rng_state(g)
        self.ema = copy.deepcopy(self.label_net).requires_grad_(False)
        self.beta, self.image_input = beta, image_input

    def learnable(self) -> list[nn.Parameter]:
        return list(self.label_net.parameters())

    def representation(self, draw: StepBatch, feats: Tensor) -> Tensor:
        return draw.x.flatten(1) if self.image_input else feats

    def live_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        return self.label_net(rep, draw.y, allowed)

    def cached_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        return self.ema(rep, draw.y, allowed)

    @torch.no_grad()
    def after_outer(self) -> None:
        cache, live = list(self.ema.parameters()), [p.detach() for p in self.label_net.parameters()]
        torch._foreach_mul_(cache, self.beta)  # omega_bar <- beta * omega_bar + (1 - beta) * omega
        torch._foreach_add_(cache, live, alpha=1 - self.beta)


class SlotLogits(BilevelLabels):
    """``l2y``: a learnable logit vector per buffer slot, trained by the same outer loss ("direct
    optimisation"). A slot's logits (and their Adam moments) restart at init_margin * one_hot(y) when
    reservoir puts a new sample in the slot."""

    def __init__(self, opts: DictConfig, buffer_size: int, n_classes: int, classes_per_task: int,
                 seed: int) -> None:
        super().__init__(opts, n_classes, classes_per_task, seed)
        self.slot_logits = nn.Parameter(torch.zeros(buffer_size, n_classes))
        self.init_margin = opts.init_margin

    def learnable(self) -> list[nn.Parameter]:
        return [self.slot_logits]

    def live_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        return restrict_to_seen(self.slot_logits[draw.slots], allowed)

    def cached_labels(self, rep: Tensor, draw: StepBatch, allowed: Tensor) -> Tensor:
        return self.live_labels(rep, draw, allowed)

    @torch.no_grad()
    def on_insert(self, slots: Tensor, y: Tensor) -> None:
        keep = slots >= 0
        if not keep.any():
            return
        s = slots[keep].to(self.slot_logits.device)
        self.slot_logits[s] = self.init_margin * F.one_hot(y[keep.to(y.device)], self.n_classes).float()
        state = self.optimizer().state.get(self.slot_logits, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][s] = 0.0


def build_learned_labels(cfg: DictConfig, net: nn.Module, n_classes: int,
                         image_shape: tuple[int, ...]) -> BilevelLabels:
    """``labels=ddn`` / ``ddn_frozen`` / ``l2y`` from the config."""
    opts = cfg.ddn
    cpt = cfg.dataset.classes_per_task
    if cfg.labels == "l2y":
        return SlotLogits(opts, cfg.buffer, n_classes, cpt, cfg.seed)
    image_input = opts.input == "image"
    rep_dim = math.prod(image_shape) if image_input else net.head.in_features
    return DDNLabels(opts, rep_dim, n_classes, cpt, cfg.beta, cfg.seed, image_input,
                     frozen=cfg.labels == "ddn_frozen")
