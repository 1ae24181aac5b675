"""Each baseline's loss on hand-built tensors equals its formula computed by hand here."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from src.methods.base import StepBatch, StepContext
from src.methods.clser import CLSER, consistency_targets, ema_decay, ema_update
from src.methods.der import DER, DERpp
from src.methods.er import ER
from src.methods.erace import ERACE, ace_mask
from src.train import train


def ce_by_hand(logits, y):
    return float(np.mean([-(l[c] - math.log(sum(math.exp(v) for v in l))) for l, c in zip(logits.tolist(), y.tolist())]))


def batch(x, y, logits=None):
    return StepBatch(torch.zeros(len(y), 1), torch.tensor(y), torch.zeros(len(y), dtype=torch.long),
                     None if logits is None else torch.tensor(logits))


CTX = StepContext(task=1, seen_classes=torch.tensor([True, True, True, False]))
S_LOGITS = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 0.3, 2.0, 1.0]])
B_LOGITS = torch.tensor([[0.2, -0.4, 1.0, 0.0], [1.5, 0.1, 0.0, 0.3]])
STREAM = batch(None, [2, 2])
DRAW = batch(None, [0, 1], logits=[[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, -1.0, 0.5]])


def test_er_is_ce_averaged_over_stream_and_buffer():
    out = ER().loss(S_LOGITS, [B_LOGITS], STREAM, [DRAW], CTX)
    expected = ce_by_hand(torch.cat([S_LOGITS, B_LOGITS]), torch.tensor([2, 2, 0, 1]))
    assert float(out["ce"]) == pytest.approx(expected)


def test_der_uses_the_logits_stored_at_insertion():
    out = DER(alpha=0.3).loss(S_LOGITS, [B_LOGITS], STREAM, [DRAW], CTX)
    mse = float(((B_LOGITS - DRAW.logits) ** 2).mean())
    assert float(out["ce"]) == pytest.approx(ce_by_hand(S_LOGITS, STREAM.y))
    assert float(out["der_mse"]) == pytest.approx(0.3 * mse)


def test_derpp_adds_ce_on_a_second_draw():
    draw2 = batch(None, [3, 0])
    l2 = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.5, 0.0, 0.0, 0.0]])
    out = DERpp(alpha=0.1, beta=0.5).loss(S_LOGITS, [B_LOGITS, l2], STREAM, [DRAW, draw2], CTX)
    assert float(out["der_mse"]) == pytest.approx(0.1 * float(((B_LOGITS - DRAW.logits) ** 2).mean()))
    assert float(out["derpp_ce"]) == pytest.approx(0.5 * ce_by_hand(l2, draw2.y))
    assert DERpp.num_draws == 2 and DERpp.label_draw == 1


def test_der_stores_pre_update_logits_in_the_buffer(cfg_factory):
    """After a real training step, the buffer's logits slot holds what the model said *before* the step."""
    import pytorch_lightning as pl

    from src.train import build

    cfg = cfg_factory("baseline=der", "buffer=500", "logger=none")
    stream, learner = build(cfg)
    stream.set_task(0)
    learner.start_task(0)
    first = next(iter(stream.train_dataloader()))  # the sampler is deterministic: the same first batch
    with torch.no_grad():
        before = learner.net(learner.preprocess(first[0]))
    pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(learner, datamodule=stream)
    assert torch.equal(learner.buffer.labels[:10], first[1])
    assert torch.allclose(learner.buffer.logits[:10], before, atol=1e-6)
    with torch.no_grad():
        after = learner.net(learner.preprocess(first[0]))
    assert not torch.allclose(after, before)  # the step did change the model


def test_ace_mask_present_seen_unseen():
    seen = torch.tensor([True, True, True, False, False])
    keep = ace_mask(torch.tensor([2, 2, 1]), seen, unmask_unseen=True)
    assert keep.tolist() == [False, True, True, True, True]  # 0 seen & absent: masked; 3, 4 unseen: kept
    keep = ace_mask(torch.tensor([2]), seen, unmask_unseen=False)
    assert keep.tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_erace_loss(reduction):
    out = ERACE(reduction=reduction, unmask_unseen=True).loss(S_LOGITS, [B_LOGITS], STREAM, [DRAW], CTX)
    # stream batch has only class 2; classes 0, 1 seen and absent -> masked; class 3 unseen -> kept
    kept = S_LOGITS[:, [2, 3]]
    stream_ce = ce_by_hand(kept, torch.tensor([0, 0]))
    buffer_ce = ce_by_hand(B_LOGITS, DRAW.y)
    total = sum(float(v) for v in out.values())
    expected = stream_ce + buffer_ce if reduction == "sum" else (stream_ce + buffer_ce) / 2
    assert total == pytest.approx(expected, rel=1e-6)


def test_clser_target_selection_and_loss():
    stable = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    plastic = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    t = consistency_targets(stable, plastic, y)
    assert torch.equal(t[0], stable[0]) and torch.equal(t[1], plastic[1])

    net = nn.Linear(1, 4)
    m = CLSER(reg_weight=0.15, stable_freq=0.1, plastic_freq=0.3, stable_alpha=0.999, plastic_alpha=0.999,
              eval_model="stable", seed=0)
    m.setup(net)
    draw = StepBatch(torch.ones(2, 1), y, torch.zeros(2, dtype=torch.long))
    with torch.no_grad():
        target = consistency_targets(m.stable(draw.x), m.plastic(draw.x), y)
    out = m.loss(S_LOGITS, [B_LOGITS], STREAM, [draw], CTX)
    assert float(out["consistency"]) == pytest.approx(0.15 * float(((B_LOGITS - target) ** 2).mean()))
    assert float(out["ce"]) == pytest.approx(ce_by_hand(torch.cat([S_LOGITS, B_LOGITS]), torch.tensor([2, 2, 0, 1])))


def test_clser_ema_decay_and_update_probability():
    assert ema_decay(0, 0.999) == 0.0 and ema_decay(9, 0.999) == pytest.approx(0.9)
    assert ema_decay(10_000, 0.999) == 0.999
    ema, live = nn.Linear(2, 2), nn.Linear(2, 2)
    before = [p.clone() for p in ema.parameters()]
    ema_update(ema, live, 0.75)
    for b, l, e in zip(before, live.parameters(), ema.parameters()):
        assert torch.allclose(e, 0.75 * b + 0.25 * l)
    m = CLSER(0.15, stable_freq=0.1, plastic_freq=0.3, stable_alpha=0.999, plastic_alpha=0.999, eval_model="stable",
              seed=5)
    m.setup(nn.Linear(2, 2))
    n = 4000
    for step in range(n):
        m.after_step(live, step)
    stable_rate, plastic_rate = (m.updates.float() / n).tolist()
    assert abs(stable_rate - 0.1) < 0.02 and abs(plastic_rate - 0.3) < 0.03


def test_clser_reports_the_stable_model_first():
    m = CLSER(0.15, 0.1, 0.3, 0.999, 0.999, eval_model="stable", seed=0)
    net = nn.Linear(1, 2)
    m.setup(net)
    assert list(m.eval_models(net)) == ["stable", "plastic", "working"]


def test_joint_sees_all_classes(cfg_factory):
    out = train(cfg_factory("baseline=joint", "logger=none"))
    R = np.array(out["accuracy_matrices"]["net"]["class_il"], dtype=float)
    assert np.isnan(R[0]).all() and not np.isnan(R[-1]).any()
    assert out["steps"] * 10 >= 1300  # one pass over every task's data (1,347 training images)


def test_tuned_values_follow_buffer_and_dataset(cfg_factory):
    assert cfg_factory("baseline=derpp", "buffer=200").baseline.method.beta == 0.5
    cfg = cfg_factory("baseline=derpp", "buffer=5120")
    assert (cfg.baseline.method.alpha, cfg.baseline.method.beta) == (0.1, 1.0)
    assert cfg_factory("baseline=derpp", "buffer=600").baseline.method.alpha == 0.2
    cfg = cfg_factory("baseline=clser", "buffer=500")
    assert (cfg.baseline.method.stable_freq, cfg.baseline.method.plastic_freq) == (0.1, 0.9)
    assert cfg.baseline.method.stable_alpha == 0.42  # the `seq_digits/online` row (the default dataset, setting)
    assert cfg_factory("baseline=clser", "dataset=seq_mnist").baseline.method.stable_alpha == 0.985  # default/online
    assert cfg_factory("baseline=clser", "setting=offline").baseline.method.stable_alpha == 0.999
    cfg = cfg_factory("baseline=derpp", "dataset=seq_tinyimg", "buffer=200")
    assert cfg.baseline.method.beta == 1.0
    assert cfg_factory("baseline=derpp", "baseline.method.alpha=0.7").baseline.method.alpha == 0.7
    assert cfg_factory("baseline=der", "setting=offline").optimizer.lr == 0.03


@pytest.mark.parametrize("baseline", ["er", "der", "derpp", "clser", "erace"])
@pytest.mark.parametrize("labels", ["hard", "ddn"])
def test_every_baseline_with_and_without_ddn(cfg_factory, baseline, labels):
    out = train(cfg_factory(f"baseline={baseline}", f"labels={labels}", "buffer=40", "logger=none",
                            out=f"{baseline}_{labels}"))
    assert out["status"] == "completed"
    assert 0 <= out["final"]["class_il"] <= 100
    if labels == "ddn":
        assert out["label_diagnostics"]["outer_steps"] > 0


def test_cosine_head_is_scaled_cosine_and_runs_with_erace_and_ddn(cfg_factory):
    from src.models.backbones import CosineHead
    from src.train import train

    head = CosineHead(3, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    expected = torch.tensor([[10.0, 10.0 / 2 ** 0.5], [0.0, 0.0]])
    assert torch.allclose(head(x), expected)
    res = train(cfg_factory("logger=none", "baseline=erace", "labels=ddn", "head=cosine"))
    assert res["status"] == "completed" and res["config"]["head"] == "cosine"
