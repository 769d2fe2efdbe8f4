"""The pairwise loss, ARL weights, the ARW adversary's gradient ascent and the split of parameters between
the two optimizers (unit level and in a real 2-step Lightning fit on AN4)."""
from __future__ import annotations

import itertools

import lightning as L
import pytest
import torch

from zoo.tasks.arw import ARWTask, accumulated_pairwise_similarity, arl_weights
from zoo.tasks.speaker_verification import SpeakerVerificationTask, pair_terms, speaker_codes, weighted_pair_loss

from helpers import TINY_SPEAKER


def test_arl_weights_normalisation():
    for logits in (torch.randn(12) * 3, torch.full((7,), -20.0), torch.tensor([30.0, -30.0, 0.0])):
        lam = arl_weights(logits)
        assert lam.mean() == pytest.approx(2.0, abs=1e-5)
        assert (lam >= 1.0).all()
    assert torch.allclose(arl_weights(torch.zeros(5)), torch.full((5,), 2.0))
    lam = arl_weights(torch.tensor([2.0, 0.0, -2.0]))
    assert lam[0] > lam[1] > lam[2]  # larger adversary output -> larger weight


def _terms(seed=0, b=8):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, 6, generator=g)
    codes = speaker_codes(["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"][:b])
    return pair_terms(emb, codes, torch.tensor(10.0), torch.tensor(-5.0)), codes


def test_pair_terms_balance_and_baseline_mean():
    t, codes = _terms()
    target = codes[:, None] == codes[None, :]
    off = ~torch.eye(len(codes), dtype=torch.bool)
    assert torch.equal(t["target"], target) and (t["a"].diagonal() == 0).all()
    assert torch.allclose(t["a"], t["a"].t())
    assert t["a"][target & off].sum() == pytest.approx(0.5) and t["a"][~target].sum() == pytest.approx(0.5)
    # baseline (no weights) = mean positive-pair loss / 2 + mean negative-pair loss / 2
    want = 0.5 * t["loss"][target & off].mean() + 0.5 * t["loss"][~target].mean()
    assert weighted_pair_loss(t["loss"], t["a"], None) == pytest.approx(float(want), rel=1e-6)
    ones = torch.ones(len(codes))
    assert weighted_pair_loss(t["loss"], t["a"], ones) == pytest.approx(float(want), rel=1e-6)


def test_pair_weight_is_sum_of_sample_weights():
    t, codes = _terms(1)
    lam = arl_weights(torch.randn(8))
    n = len(codes)
    num = den = 0.0
    for i, j in itertools.permutations(range(n), 2):
        w = float(lam[i] + lam[j]) * float(t["a"][i, j])
        num += w * float(t["loss"][i, j])
        den += w
    assert weighted_pair_loss(t["loss"], t["a"], lam, "pw") == pytest.approx(num / den, rel=1e-5)
    # PL: per-sample balanced mean of its pairs, weighted by lambda_i
    per = [sum(float(t["a"][i, j] * t["loss"][i, j]) for j in range(n)) / float(t["a"][i].sum()) for i in range(n)]
    want = sum(float(lam[i]) * per[i] for i in range(n)) / float(lam.sum())
    assert weighted_pair_loss(t["loss"], t["a"], lam, "per_sample") == pytest.approx(want, rel=1e-5)
    # up-weighting the samples of the worst pair increases the loss
    i, j = divmod(int((t["loss"] * t["a"]).argmax()), n)
    up = torch.ones(n)
    up[[i, j]] = 5.0
    assert weighted_pair_loss(t["loss"], t["a"], up) > weighted_pair_loss(t["loss"], t["a"], None)


class _Wrapped:  # what Lightning's LightningOptimizer exposes to the task
    def __init__(self, opt):
        self.optimizer = opt

    def zero_grad(self):
        self.optimizer.zero_grad()


def _arw(**kw):
    torch.manual_seed(0)
    return ARWTask(adversary_warmup=0, n_clusters=3, crop_seconds=None, **TINY_SPEAKER, **kw)


def test_accumulated_pairwise_similarity_by_hand():
    cos = torch.tensor([[1.0, 0.8, 0.1, -0.2], [0.8, 1.0, 0.3, 0.0], [0.1, 0.3, 1.0, 0.5], [-0.2, 0.0, 0.5, 1.0]])
    same = speaker_codes(list("aabc"))
    target = same[:, None] == same[None, :]
    aps = accumulated_pairwise_similarity(cos, target)
    assert aps[0].tolist() == pytest.approx([0.8, (0.1 - 0.2) / 2])   # one positive, two negatives
    assert aps[2].tolist() == pytest.approx([0.0, (0.1 + 0.3 + 0.5) / 3])  # no positive partner: 0


def test_adversary_sees_only_its_configured_input():
    with pytest.raises(ValueError, match="adversary_input"):
        _arw(adversary_input="labels")
    dims = {k: _arw(adversary_input=k).adversary.mlp[0].in_features for k in ("kmeans", "aps", "embedding")}
    d = _arw().net.embed_dim
    assert dims == {"kmeans": d + 3, "aps": d + 2, "embedding": d}


@pytest.mark.parametrize("adversary_input,pair_weighting", [("kmeans", "pw"), ("kmeans", "per_sample"),
                                                            ("aps", "per_sample"), ("embedding", "pw")])
def test_adversary_step_is_gradient_ascent_on_the_weighted_loss(adversary_input, pair_weighting):
    task = _arw(adversary_input=adversary_input, pair_weighting=pair_weighting)
    adv_opt = torch.optim.SGD(task.adversary.parameters(), lr=0.5)
    task.optimizers = lambda: [None, _Wrapped(adv_opt)]
    task.manual_backward = lambda loss: loss.backward()
    torch.manual_seed(1)
    emb = torch.randn(8, task.net.embed_dim)
    t = pair_terms(emb, speaker_codes(list("aabbccdd")), task.pair_scale, task.pair_bias)
    t = {k: v.detach() for k, v in t.items()} | {"emb": emb}
    batch = {"id": [f"u{i}" for i in range(8)]}
    learner_before = {n: p.detach().clone() for n, p in task.named_parameters() if not n.startswith("adversary.")}
    adv_before = [p.detach().clone() for p in task.adversary.parameters()]
    objs = []
    for _ in range(5):
        lam = task.sample_weights(t, batch)
        objs.append(float(task.objective(t, lam).detach()))
        logs = task.adversary_step(t, lam)
        assert logs["train_adv_loss"] == pytest.approx(-objs[-1], rel=1e-5)
    assert objs[-1] > objs[0] and all(b >= a - 1e-6 for a, b in zip(objs, objs[1:]))
    assert any(not torch.equal(a, p) for a, p in zip(adv_before, task.adversary.parameters()))
    for n, p in task.named_parameters():  # the adversary step never touches the learner
        if n in learner_before:
            assert torch.equal(p, learner_before[n]), n


def test_optimizers_partition_the_parameters():
    task = _arw(aam_weight=0.0)
    opt_l, opt_a = task.configure_optimizers()
    learner = {id(p) for g in opt_l.param_groups for p in g["params"]}
    adv = {id(p) for g in opt_a.param_groups for p in g["params"]}
    assert adv == {id(p) for p in task.adversary.parameters()}
    assert not learner & adv and learner | adv == {id(p) for p in task.parameters()}
    assert id(task.pair_scale) in learner and id(task.pair_bias) in learner
    base = SpeakerVerificationTask(**TINY_SPEAKER)
    assert {id(p) for g in base.configure_optimizers().param_groups for p in g["params"]} == \
        {id(p) for p in base.parameters()}


class _Snapshots(L.Callback):
    def __init__(self):
        self.snaps = []

    def on_train_start(self, trainer, task):
        self.snaps.append(self._snap(task))

    def on_train_batch_end(self, trainer, task, *args):
        self.snaps.append(self._snap(task))

    @staticmethod
    def _snap(task):
        return {n: p.detach().clone() for n, p in task.named_parameters()}


def test_real_fit_warmup_then_both_optimizers(an4_root):
    """2 steps on real AN4 batches: step 1 is learner-only warm-up, step 2 also moves the adversary;
    global_step counts learner steps only."""
    from zoo.data import SpeechDataModule

    L.seed_everything(0)
    dm = SpeechDataModule(corpus="an4_spk", data_dir=str(an4_root.parent), sampler="speaker_balanced",
                          speakers_per_batch=3, utts_per_speaker=2, max_duration=60, num_buckets=2)
    task = ARWTask(adversary_warmup=1, n_clusters=2, crop_seconds=1.0, stats_batches=1, aam_weight=0.5,
                   **TINY_SPEAKER)
    snaps = _Snapshots()
    trainer = L.Trainer(max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[snaps],
                        use_distributed_sampler=False)
    trainer.fit(task, dm)
    assert trainer.global_step == 2
    s0, s1, s2 = snaps.snaps
    changed = lambda a, b, prefix: any(not torch.equal(a[n], b[n]) for n in a if n.startswith(prefix))  # noqa: E731
    assert changed(s0, s1, "net.") and not changed(s0, s1, "adversary.")  # warm-up: learner only
    assert changed(s1, s2, "net.") and changed(s1, s2, "adversary.")      # then both
    assert task.cluster_of and len(set(task.cluster_of.values())) == 2   # k-means pseudo-labels of train
    assert task.aam.weight.shape == (54, task.net.embed_dim) and changed(s0, s2, "aam.")  # AAM over train speakers
