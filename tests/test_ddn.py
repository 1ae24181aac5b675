"""Data-Distill-Net: exact hypergradient, EMA, label variants, alpha=0 is the baseline, real-config runs."""
import copy

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from src.buffer import ReservoirBuffer
from src.data.transforms import BatchPreprocess
from src.diagnostics import GradientAlignment
from src.learner import ContinualLearner
from src.methods.base import StepBatch, StepContext
from src.methods.clser import CLSER
from src.methods.der import DERpp
from src.methods.er import ER
from src.methods.erace import ERACE
from src.models.backbones import MLP, ResNet18, frozen_norm_stats
from src.plugins.ddn import DDNLabels, LabelNet, SlotLogits
from src.plugins.labels import RandomLabels, Smooth
from src.train import train

N_CLASSES = 4


def ddn_opts(**kw):
    base = dict(hidden=[8], input="features", init_margin=2.0, lr=1e-3, every=1, unroll_steps=1,
                unroll_scope="head", first_order=False, val_source="stream_buffer", val_batch_size=6,
                val_balanced=False, old_to_old=False, per_step=True, boundary_iters=0, label_mix=1.0)
    base.update(kw)
    return OmegaConf.create(base)


class NoTrainerLearner(ContinualLearner):
    """The learner outside a Trainer: a fixed lr and a plain backward."""

    lr = 0.1

    def manual_backward(self, loss, *args, **kwargs):
        loss.backward()


def tiny_learner(net, plugin=None, alpha=0.7, concat=True, method=None):
    torch.manual_seed(0)
    buf = ReservoirBuffer(16, (1, 4, 4), N_CLASSES, seed=0)
    learner = NoTrainerLearner(net=net, method=method or ER(), buffer=buf, preprocess=BatchPreprocess(None, None),
                               optimizer=lambda p: torch.optim.SGD(p, lr=0.1), buffer_batch_size=5,
                               augment=False, augment_buffer=False, concat_forward=concat, seed=0,
                               labels=plugin, alpha=alpha)
    return learner.double()


def ddn_learner(net, method=None, **opts):
    """A DDN plug-in on `net` with a randomised label network (a generic point, not the zero-initialised
    last layer), attached to a tiny learner."""
    plugin = DDNLabels(ddn_opts(**opts), net.head.in_features, N_CLASSES, 2, beta=0.9, seed=0, image_input=False)
    learner = tiny_learner(net, plugin, method=method)
    with torch.no_grad():
        for p in plugin.label_net.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return plugin, learner


def batches(learner, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 255, (16, 1, 4, 4), generator=g, dtype=torch.uint8)
    y = torch.arange(16) % 2  # task 0: classes 0, 1
    learner.buffer.add(x, y, torch.zeros(16, dtype=torch.long))
    sx = torch.randint(0, 255, (5, 1, 4, 4), generator=g, dtype=torch.uint8)
    stream = StepBatch(learner.preprocess(sx).double(), torch.tensor([2, 3, 2, 3, 2]), torch.ones(5, dtype=torch.long))
    draws = []
    for _ in range(learner.method.num_draws):
        d = learner.buffer.sample(5)
        draws.append(StepBatch(learner.preprocess(d.x).double(), d.y, d.task, d.logits.double(), d.slots))
    seen = torch.tensor([True, True, True, True])
    return stream, draws, StepContext(task=1, seen_classes=seen)


def tiny_net(kind):
    """The three heads the hypergradient tests cover: MLP with a linear or cosine head, ResNet (BatchNorm)."""
    torch.manual_seed(1)
    if kind == "resnet":
        return ResNet18((1, 4, 4), N_CLASSES, nf=2)
    return MLP((1, 4, 4), N_CLASSES, [6], head="cosine" if kind == "mlp_cosine" else "linear")


def outer_value_and_grad(plugin, learner, stream, draws, ctx):
    n_stream, val = plugin.validation_batch(learner, stream, draws, ctx)
    val = (n_stream, StepBatch(val.x.double(), val.y, val.task))
    loss = plugin.outer_loss(learner, stream, draws, val, ctx, lr=0.3)
    params = plugin.learnable()
    grads = torch.autograd.grad(loss, params)
    return val, params, grads


def finite_difference(plugin, learner, stream, draws, ctx, val, params, direction, eps=1e-6):
    def value(sign):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * eps * d)
        with torch.enable_grad():
            v = float(plugin.outer_loss(learner, stream, draws, val, ctx, lr=0.3).detach())
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(sign * eps * d)
        return v

    return (value(1) - value(-1)) / (2 * eps)


@pytest.mark.parametrize("net_kind", ["mlp", "mlp_cosine", "resnet"])
@pytest.mark.parametrize("scope", ["head", "full"])
@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_hypergradient_matches_finite_difference(net_kind, scope, first_order, steps):
    net = tiny_net(net_kind)
    plugin, learner = ddn_learner(net, unroll_scope=scope, first_order=first_order, unroll_steps=steps)
    stream, draws, ctx = batches(learner)
    bn_before = {k: v.clone() for k, v in net.named_buffers()}
    val, params, grads = outer_value_and_grad(plugin, learner, stream, draws, ctx)
    for k, v in net.named_buffers():  # virtual forwards leave the real BatchNorm statistics alone
        assert torch.equal(v, bn_before[k])
    direction = [torch.randn_like(p) for p in params]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, direction))
    numeric = finite_difference(plugin, learner, stream, draws, ctx, val, params, direction)
    assert abs(analytic) > 1e-8
    if first_order and steps > 1:
        # dropping the Hessian terms is an approximation: a different, finite value (no bound promised)
        assert np.isfinite(analytic) and analytic != pytest.approx(numeric, rel=1e-5)
    else:
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("method", ["er", "derpp", "erace", "clser"])
@pytest.mark.parametrize("net_kind", ["mlp", "mlp_cosine", "resnet"])
def test_analytic_hypergradient_equals_autograd(method, net_kind):
    """ddn.hypergrad=analytic (closed form, head scope, K = 1) gives autograd's outer loss, hypergradient and
    hypergradient statistics, for every method's inner loss and any head (the JVP covers the cosine head)."""
    out = {}
    for hypergrad in ("autograd", "analytic"):
        net = tiny_net(net_kind)
        m = {"er": ER, "derpp": lambda: DERpp(0.3, 0.5), "erace": lambda: ERACE("sum", True),
             "clser": lambda: CLSER(0.15, 0.5, 0.9, 0.99, 0.9, "stable", seed=0)}[method]()
        m.setup(net)
        plugin, learner = ddn_learner(net, method=m, hypergrad=hypergrad, label_mix=0.8, center_hypergrad=True)
        stream, draws, ctx = batches(learner)
        val, params, grads = outer_value_and_grad(plugin, learner, stream, draws, ctx)
        with torch.enable_grad():
            loss = float(plugin.outer_loss(learner, stream, draws, val, ctx, lr=0.3).detach())
        out[hypergrad] = loss, grads, {k: float(v) for k, v in plugin._hyper.items()}
    (loss_a, grads_a, stats_a), (loss_b, grads_b, stats_b) = out["autograd"], out["analytic"]
    assert loss_b == pytest.approx(loss_a, rel=1e-12)
    for a, b in zip(grads_a, grads_b):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    assert any(float(g.abs().max()) > 1e-6 for g in grads_a)
    assert stats_b == pytest.approx(stats_a, rel=1e-6)
    with pytest.raises(ValueError, match="ddn.unroll_steps=1"):  # built outside the config check: still refused
        DDNLabels(ddn_opts(hypergrad="analytic", unroll_steps=2), 6, N_CLASSES, 2, 0.9, 0, False)


def test_frozen_norm_stats_normalise_as_usual_but_leave_the_statistics_alone():
    torch.manual_seed(0)
    net = ResNet18((3, 8, 8), N_CLASSES, nf=2)
    x = torch.randn(6, 3, 8, 8)
    net(torch.randn(6, 3, 8, 8))  # running statistics away from their initial values
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with frozen_norm_stats(net):
        train_out = net(x)
        net.eval()
        eval_out = net(x)
        net.train()
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert torch.equal(eval_out, copy.deepcopy(net).eval()(x))  # eval mode: the running statistics
    assert torch.equal(train_out, net(x))  # train mode: batch statistics, bit for bit as an ordinary forward
    assert not torch.equal(net.bn1.running_mean, state["bn1.running_mean"])  # and the flag is back on
    with pytest.raises(RuntimeError), frozen_norm_stats(net):
        raise RuntimeError("inside")
    assert all(m.track_running_stats for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_l2y_hypergradient_matches_finite_difference():
    net = MLP((1, 4, 4), N_CLASSES, [6])
    plugin = SlotLogits(ddn_opts(), buffer_size=16, n_classes=N_CLASSES, classes_per_task=2, seed=0)
    learner = tiny_learner(net, plugin)
    stream, draws, ctx = batches(learner)
    with torch.no_grad():
        plugin.slot_logits.copy_(torch.randn_like(plugin.slot_logits))
    val, params, grads = outer_value_and_grad(plugin, learner, stream, draws, ctx)
    direction = [torch.randn_like(p) for p in params]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, direction))
    numeric = finite_difference(plugin, learner, stream, draws, ctx, val, params, direction)
    assert analytic == pytest.approx(numeric, rel=1e-5)
    # only the slots of the replay draw get a gradient
    touched = grads[0].abs().sum(1) > 0
    assert set(touched.nonzero().flatten().tolist()) <= set(draws[0].slots.tolist())


def test_label_net_starts_at_almost_the_hard_label():
    net = LabelNet(5, N_CLASSES, [8, 8], init_margin=8.0)
    y = torch.tensor([0, 1, 2])
    allowed = torch.ones(3, N_CLASSES, dtype=torch.bool)
    p = net(torch.randn(3, 5), y, allowed)
    assert torch.allclose(p.sum(1), torch.ones(3))
    assert (p.gather(1, y[:, None]) > 0.99).all()
    allowed[:, 3] = False
    assert (net(torch.randn(3, 5), y, allowed)[:, 3] == 0).all()


def test_input_norm_makes_the_label_independent_of_the_feature_scale():
    torch.manual_seed(0)
    net = LabelNet(5, N_CLASSES, [8], init_margin=2.0, norm=True)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    rep, y = torch.randn(3, 5), torch.tensor([0, 1, 2])
    allowed = torch.ones(3, N_CLASSES, dtype=torch.bool)
    assert torch.allclose(net(rep, y, allowed), net(4 * rep + 1, y, allowed), atol=1e-5)
    net.norm = False
    assert not torch.allclose(net(rep, y, allowed), net(4 * rep + 1, y, allowed), atol=1e-3)


def test_without_class_input_only_the_margin_knows_the_class():
    torch.manual_seed(0)
    net = LabelNet(5, N_CLASSES, [8], init_margin=2.0, class_input=False)
    assert net.mlp[0].in_features == 5
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))
    rep = torch.randn(1, 5).expand(N_CLASSES, -1)
    allowed = torch.ones(N_CLASSES, N_CLASSES, dtype=torch.bool)
    scores = torch.log(net(rep, torch.arange(N_CLASSES), allowed))  # one input, labelled as each class in turn
    # log-probabilities differ between the labels only by the margin on the labelled class (up to a constant)
    centred = scores - scores.mean(1, keepdim=True)
    margin = 2.0 * (torch.eye(N_CLASSES) - 1 / N_CLASSES)
    assert torch.allclose(centred - margin, (centred - margin)[:1].expand(N_CLASSES, -1), atol=1e-5)
    with_class = LabelNet(5, N_CLASSES, [8], init_margin=2.0)
    assert with_class.mlp[0].in_features == 5 + N_CLASSES


def test_label_mix_bounds_how_far_the_label_moves():
    net = LabelNet(5, N_CLASSES, [8], init_margin=2.0, mix=0.3)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 3)  # a label net far from its init
    y = torch.tensor([0, 1, 2, 1])
    allowed = torch.ones(4, N_CLASSES, dtype=torch.bool)
    allowed[:, 3] = False
    p = net(torch.randn(4, 5), y, allowed)
    free = LabelNet(5, N_CLASSES, [8], init_margin=2.0)
    free.load_state_dict(net.state_dict())
    q = free(torch.randn(4, 5), y, allowed)
    assert torch.allclose(p.sum(1), torch.ones(4)) and (p[:, 3] == 0).all()
    assert (p.gather(1, y[:, None]) >= 0.7 - 1e-6).all() and (p.argmax(1) == y).all()
    assert (q.argmax(1) != y).any()  # the same network, unbounded, does flip labels


def test_label_mix_hypergradient_matches_finite_difference():
    torch.manual_seed(2)
    net = MLP((1, 4, 4), N_CLASSES, [6])
    plugin, learner = ddn_learner(net, label_mix=0.4)
    stream, draws, ctx = batches(learner)
    val, params, grads = outer_value_and_grad(plugin, learner, stream, draws, ctx)
    direction = [torch.randn_like(p) for p in params]
    analytic = sum(float((g * d).sum()) for g, d in zip(grads, direction))
    numeric = finite_difference(plugin, learner, stream, draws, ctx, val, params, direction)
    assert abs(analytic) > 1e-8 and analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_hypergradient_statistics_on_hand_built_gradients():
    plugin = DDNLabels(ddn_opts(center_hypergrad=True), 3, N_CLASSES, 2, beta=0.9, seed=0, image_input=False)
    same = torch.tensor([[1.0, -2.0, 0.5, 0.0]] * 3)
    out = plugin._on_hypergrad(same, torch.full((3, 4), 0.25), torch.zeros(3, dtype=torch.long))
    assert plugin.diagnostics()["hypergrad_common_share"] == pytest.approx(1.0)
    assert torch.equal(out, torch.zeros(3, 4))  # one push shared by the whole draw: nothing per-sample is left
    # opposite pushes: no shared part; sample 0 is pushed off its class 0, sample 1 towards it
    g = torch.tensor([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]])
    soft = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    out = plugin._on_hypergrad(g, soft, torch.tensor([0, 0]))
    assert plugin.diagnostics()["hypergrad_common_share"] == pytest.approx(0.0)
    assert plugin.diagnostics()["hypergrad_away_from_true"] == pytest.approx(0.5)
    assert torch.equal(out, g)
    assert plugin.summary()["hypergrad_common_share"] == pytest.approx(0.5)  # run mean of 1 and 0


@pytest.mark.parametrize("center", [False, True])
def test_centred_hypergradient_leaves_a_draw_of_identical_samples_untrained(center):
    torch.manual_seed(1)
    net = MLP((1, 4, 4), N_CLASSES, [6])
    plugin, learner = ddn_learner(net, center_hypergrad=center)
    stream, draws, ctx = batches(learner)
    d = draws[0]
    first = torch.zeros(len(d.y), dtype=torch.long)  # every replayed sample is the draw's first one
    draws = [StepBatch(d.x[first], d.y[first], d.task[first], None, d.slots[first])]
    _, _, grads = outer_value_and_grad(plugin, learner, stream, draws, ctx)
    norm = sum(float(g.abs().sum()) for g in grads)
    assert (norm == pytest.approx(0.0, abs=1e-12)) if center else norm > 1e-6


def test_ema_update_is_exact():
    plugin = DDNLabels(ddn_opts(), 5, N_CLASSES, 2, beta=0.75, seed=0, image_input=False)
    cache = [p.clone() for p in plugin.ema.parameters()]
    with torch.no_grad():
        for p in plugin.label_net.parameters():
            p.add_(1.0)
    live = [p.clone() for p in plugin.label_net.parameters()]
    plugin.after_outer()
    for c, l, new in zip(cache, live, plugin.ema.parameters()):
        assert torch.allclose(new, 0.75 * c + 0.25 * l, atol=0, rtol=0) or torch.equal(new, 0.75 * c + 0.25 * l)
        assert not new.requires_grad


def test_outer_step_updates_ddn_not_the_classifier_and_respects_every():
    net = MLP((1, 4, 4), N_CLASSES, [6])
    plugin = DDNLabels(ddn_opts(every=2, lr=0.05), net.head.in_features, N_CLASSES, 2, 0.9, 0, False).double()
    learner = tiny_learner(net, plugin)
    stream, draws, ctx = batches(learner)
    before_net = copy.deepcopy(net.state_dict())
    before = [p.clone() for p in plugin.label_net.parameters()]
    plugin.maybe_outer_step(learner, stream, draws, ctx, step=1)  # not a multiple of every
    assert all(torch.equal(a, b) for a, b in zip(before, plugin.label_net.parameters()))
    plugin.maybe_outer_step(learner, stream, draws, ctx, step=2)
    assert not all(torch.equal(a, b) for a, b in zip(before, plugin.label_net.parameters()))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before_net.items())
    plugin.maybe_outer_step(learner, stream, draws, StepContext(0, ctx.seen_classes), step=4)  # task 0: none
    assert plugin.outer_steps == 1


def test_smooth_random_and_l2y_targets():
    seen = torch.tensor([True, True, True, False])
    ctx = StepContext(task=1, seen_classes=seen)
    draw = StepBatch(torch.zeros(3, 1), torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.long),
                     slots=torch.tensor([4, 0, 4]))
    sm = Smooth(0.3).targets(None, draw, ctx)
    assert torch.allclose(sm.sum(1), torch.ones(3))
    assert sm[0, 0].item() == pytest.approx(0.7 + 0.1) and sm[0, 3] == 0
    rnd = RandomLabels(8, N_CLASSES, seed=0)
    r1, r2 = rnd.targets(None, draw, ctx), rnd.targets(None, draw, ctx)
    assert torch.equal(r1, r2) and torch.equal(r1[0], r1[2])  # fixed per slot
    assert (r1[:, 3] == 0).all() and torch.allclose(r1.sum(1), torch.ones(3))

    l2y = SlotLogits(ddn_opts(init_margin=3.0), buffer_size=8, n_classes=N_CLASSES, classes_per_task=2, seed=0)
    with torch.no_grad():
        l2y.slot_logits.fill_(0.5)
    l2y.optimizer().state[l2y.slot_logits] = {"exp_avg": torch.ones(8, N_CLASSES),
                                              "exp_avg_sq": torch.ones(8, N_CLASSES)}
    l2y.on_insert(torch.tensor([2, -1, 5]), torch.tensor([1, 0, 3]))
    assert torch.equal(l2y.slot_logits[2], torch.tensor([0.0, 3.0, 0.0, 0.0]))
    assert torch.equal(l2y.slot_logits[5], torch.tensor([0.0, 0.0, 0.0, 3.0]))
    assert torch.equal(l2y.slot_logits[0], torch.full((4,), 0.5))  # untouched slot keeps its logits
    assert l2y.optimizer().state[l2y.slot_logits]["exp_avg"][2].abs().sum() == 0


def test_confident_wrong_labels_are_warned_about(caplog):
    plugin = DDNLabels(ddn_opts(), 5, N_CLASSES, 2, 0.9, 0, False)
    ctx = StepContext(1, torch.ones(N_CLASSES, dtype=torch.bool))
    y = torch.tensor([0, 1, 2, 3])
    plugin._record(torch.eye(N_CLASSES)[y], y, ctx)  # right labels: no warning
    assert plugin.summary()["relabel_warnings"] == 0
    with caplog.at_level("WARNING", logger="ddn_cl"):
        plugin._record(torch.eye(N_CLASSES)[torch.tensor([1, 0, 2, 3])], y, ctx)  # 50% flipped, confident
    assert plugin.summary()["relabel_warnings"] == 1 and plugin.summary()["collapse_warnings"] == 0
    assert "LABEL FLIPS: 50%" in caplog.text
    assert "relabel_warnings" not in RandomLabels(4, N_CLASSES, seed=0).summary()  # random labels flip by design


def test_flip_share_counts_strictly_more_mass_elsewhere():
    plugin = DDNLabels(ddn_opts(), 5, N_CLASSES, 2, 0.9, 0, False)
    ctx = StepContext(1, torch.ones(N_CLASSES, dtype=torch.bool))
    y = torch.tensor([1, 2, 3, 3])
    tie = torch.tensor([[0.5, 0.5, 0.0, 0.0],  # label_mix=0.5 saturated on a lower class: a tie, not a flip
                        [0.0, 0.5, 0.5, 0.0],
                        [0.0, 0.0, 0.6, 0.4],  # more mass elsewhere: a flip
                        [0.1, 0.1, 0.1, 0.7]])
    plugin._record(tie, y, ctx)
    assert plugin.diagnostics()["argmax_flip_share"] == pytest.approx(0.25)
    assert plugin.diagnostics()["true_class_mass"] == pytest.approx((0.5 + 0.5 + 0.4 + 0.7) / 4)


def test_old_to_old_restricts_old_samples():
    plugin = DDNLabels(ddn_opts(old_to_old=True), 5, N_CLASSES, 2, 0.9, 0, False)
    draw = StepBatch(torch.zeros(2, 1), torch.tensor([0, 2]), torch.tensor([0, 1]))
    allowed = plugin.allowed_classes(draw, StepContext(1, torch.ones(N_CLASSES, dtype=torch.bool)))
    assert allowed.tolist() == [[True, True, False, False], [True, True, True, True]]


def test_own_task_keeps_every_label_inside_its_task():
    plugin = DDNLabels(ddn_opts(own_task=True), 5, N_CLASSES, 2, 0.9, 0, False)
    draw = StepBatch(torch.zeros(3, 1), torch.tensor([0, 2, 3]), torch.tensor([0, 1, 1]))
    allowed = plugin.allowed_classes(draw, StepContext(1, torch.ones(N_CLASSES, dtype=torch.bool)))
    assert allowed.tolist() == [[True, True, False, False], [False, False, True, True], [False, False, True, True]]
    labels = plugin.soft_labels(torch.randn(3, 5), draw, StepContext(1, torch.ones(N_CLASSES, dtype=torch.bool)))
    assert torch.all(labels[~allowed] == 0) and torch.allclose(labels.sum(1), torch.ones(3))


RESNET = ["dataset.net._target_=src.models.backbones.ResNet18", "+dataset.net.nf=4", "~dataset.net.hidden"]


@pytest.mark.parametrize("extra", [[], RESNET + ["ddn.unroll_scope=full"]])
def test_alpha_zero_reproduces_the_baseline_bit_for_bit(cfg_factory, extra):
    base = train(cfg_factory("buffer=40", "logger=none", *extra, out="hard"))
    ddn = train(cfg_factory("buffer=40", "logger=none", "labels=ddn", "alpha=0", *extra, out="ddn"))
    for key in ("class_il", "task_il"):
        assert np.array_equal(base["accuracy_matrices"]["net"][key], ddn["accuracy_matrices"]["net"][key],
                              equal_nan=True)
    assert ddn["label_diagnostics"]["outer_steps"] > 0


@pytest.mark.parametrize("labels", ["ddn", "ddn_frozen", "l2y", "smooth", "random", "hard_extra"])
def test_every_label_variant_runs_through_the_real_config(cfg_factory, labels):
    out = train(cfg_factory(f"labels={labels}", "buffer=40", "logger=none", out=labels))
    assert out["status"] == "completed"
    diag = out["label_diagnostics"]
    assert 0 < diag["true_class_mass"] <= 1
    if labels == "ddn":
        assert diag["outer_steps"] > 0
        assert 0 <= diag["hypergrad_common_share"] <= 1 and 0 <= diag["hypergrad_away_from_true"] <= 1
    if labels == "ddn_frozen":
        assert diag["outer_steps"] == 0


def test_gradient_alignment_is_logged_and_does_not_change_the_run(cfg_factory):
    plain = train(cfg_factory("labels=ddn", "buffer=40", "logger=none", out="plain"))
    diag = train(cfg_factory("labels=ddn", "buffer=40", "logger=none", "diagnostics.align_every=5", out="diag"))
    ga = diag["gradient_alignment"]
    assert ga["n"] > 3 and -1 <= ga["align_hard"] <= 1 and -1 <= ga["align_soft"] <= 1
    assert plain["gradient_alignment"] is None
    assert np.array_equal(plain["accuracy_matrices"]["net"]["class_il"], diag["accuracy_matrices"]["net"]["class_il"],
                          equal_nan=True)
    # its own replay draws stay out of the soft-label health figures
    assert diag["label_diagnostics"] == plain["label_diagnostics"]
    assert [t["task"] for t in ga["by_task"]] == [0, 1] and sum(t["n"] for t in ga["by_task"]) == ga["n"]
    assert ga["soft_minus_hard"] == pytest.approx(ga["align_soft"] - ga["align_hard"])
    assert ga["descent_hard"] != 0 and ga["descent_soft"] != 0
    assert -1 <= ga["align_soft_buffer"] <= 1 and 0 <= ga["soft_above_hard_share_buffer"] <= 1
    assert ga["soft_minus_hard_buffer"] == pytest.approx(ga["align_soft_buffer"] - ga["align_hard_buffer"])


def test_gradient_alignment_does_not_change_a_plain_run(cfg_factory):
    """labels=hard (no plug-in): only the hard-label cosines, and the run is the same with or without them."""
    plain = train(cfg_factory("labels=hard", "buffer=40", "logger=none", out="plain"))
    diag = train(cfg_factory("labels=hard", "buffer=40", "logger=none", "diagnostics.align_every=5", out="diag"))
    ga = diag["gradient_alignment"]
    assert ga["n"] > 3 and -1 <= ga["align_hard_buffer"] <= 1 and "align_soft" not in ga
    assert np.array_equal(plain["accuracy_matrices"]["net"]["class_il"], diag["accuracy_matrices"]["net"]["class_il"],
                          equal_nan=True)


def test_gradient_alignment_summary_exact_values():
    align = GradientAlignment(stream=None, every=1)
    align.history = [{"step": 1, "task": 0, "align_hard": 0.5, "align_soft": 0.4},
                     {"step": 2, "task": 1, "align_hard": 0.2, "align_soft": 0.5},
                     {"step": 3, "task": 1, "align_hard": 0.0, "align_soft": 0.3}]
    s = align.summary()
    assert s["n"] == 3 and s["align_hard"] == pytest.approx(0.7 / 3) and s["align_soft"] == pytest.approx(0.4)
    assert s["soft_minus_hard"] == pytest.approx(0.4 - 0.7 / 3) and s["soft_above_hard_share"] == pytest.approx(2 / 3)
    assert s["by_task"] == [{"task": 0, "n": 1, "align_hard": 0.5, "align_soft": 0.4,
                             "soft_minus_hard": pytest.approx(-0.1)},
                            {"task": 1, "n": 2, "align_hard": pytest.approx(0.1), "align_soft": pytest.approx(0.4),
                             "soft_minus_hard": pytest.approx(0.3)}]
    hard_only = GradientAlignment(stream=None, every=1)
    hard_only.history = [{"step": 1, "task": 0, "align_hard": 0.5}]
    assert hard_only.summary() == {"n": 1, "align_hard": 0.5, "by_task": [{"task": 0, "n": 1, "align_hard": 0.5}]}


def test_distillation_at_the_task_boundary(cfg_factory):
    both = train(cfg_factory("labels=ddn", "buffer=40", "logger=none", "ddn.boundary_iters=4", out="both"))
    assert both["label_diagnostics"]["boundary_steps"] == 4  # 2 tasks: only the end of task 1 distils
    assert both["label_diagnostics"]["outer_steps"] > 0
    only = train(cfg_factory("labels=ddn", "buffer=40", "logger=none", "ddn.boundary_iters=3", "ddn.per_step=false",
                             out="only"))
    assert only["label_diagnostics"]["outer_steps"] == 0 and only["label_diagnostics"]["boundary_steps"] == 3


@pytest.mark.parametrize("opts", [["ddn.val_source=heldout_buffer"], ["ddn.val_balanced=true"], ["ddn.old_to_old=true"],
                                  ["ddn.own_task=true"], ["ddn.class_input=false"], ["ddn.input=image"],
                                  ["ddn.unroll_steps=2", "ddn.first_order=true"],
                                  ["ddn.label_mix=0.3", "ddn.input_norm=true"], ["ddn.center_hypergrad=true"]])
def test_ddn_options_run(cfg_factory, opts):
    out = train(cfg_factory("labels=ddn", "buffer=40", "logger=none", *opts, out="opts"))
    assert out["status"] == "completed" and out["label_diagnostics"]["outer_steps"] > 0
