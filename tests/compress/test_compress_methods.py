"""The compression methods on their own: sparsity, weight sharing, low-bit weights, low-rank, KD, QAT."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from slimforge.compress.distill import DistillHook, attention_map
from slimforge.compress.lowrank import LOWRANK_METHODS, factorise
from slimforge.compress.prune import MaskHook, magnitude_masks, sparsity
from slimforge.compress.quantize import (
    LowBitHook,
    SharedWeightHook,
    binarize,
    from_qat,
    kmeans_1d,
    share_weights,
    ternarize,
    to_qat,
)
from slimforge.data import ArrayDataset, Normalization
from slimforge.errors import InvalidInputError
from slimforge.training import TrainSettings, train_classifier
from slimforge.zoo import create_model


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20", num_classes=10, width=0.25).eval()


@pytest.fixture(scope="module")
def tiny_split() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, 3, 8, 8), dtype=np.uint8)
    labels = np.arange(32, dtype=np.int64) % 10
    return ArrayDataset(images, labels, tuple(map(str, range(10))), Normalization((0.5,) * 3, (0.25,) * 3))


def _one_epoch(model: nn.Module, split: ArrayDataset, hooks=()) -> None:
    train_classifier(model, split, TrainSettings(epochs=1, batch_size=16, lr=0.05), hooks=list(hooks))


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_magnitude_masks_remove_the_share_asked_and_stay_zero_while_training(scope, tiny_split):
    model = _resnet()
    masks = magnitude_masks(model, 0.7, scope=scope)
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(int((~m).sum()) for m in masks.values()) / total - 0.7) < 0.01
    if scope == "layer":
        assert all(abs(float((~m).float().mean()) - 0.7) < 0.05 for m in masks.values() if m.numel() > 100)
    hook = MaskHook(masks)
    _one_epoch(model, tiny_split, [hook])
    assert abs(sparsity(model) - 0.7) < 0.01
    weights = dict(model.named_modules())
    assert all(torch.all(weights[n].weight[~m] == 0) for n, m in masks.items())


def test_kmeans_on_scalars_finds_obvious_clusters():
    values = np.concatenate([np.full(50, -1.0), np.full(30, 0.5), np.full(20, 3.0)]) + np.linspace(
        0, 0.01, 100
    )
    centroids, assign = kmeans_1d(values, 3)
    assert np.allclose(np.sort(centroids), [-0.995, 0.505, 3.005], atol=0.01)
    assert len(set(assign[:50])) == 1 and len(set(assign[50:80])) == 1


def test_shared_weights_keep_their_codebook_through_finetuning(tiny_split):
    model = _resnet()
    MaskHook(magnitude_masks(model, 0.5)).attach(model)
    hook = SharedWeightHook(share_weights(model, 3))
    before = model.stages[4].conv1[0].weight.detach().clone()
    _one_epoch(model, tiny_split, [hook])
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            values = torch.unique(m.weight.detach())
            assert len(values[values != 0]) <= 8
    after = model.stages[4].conv1[0].weight.detach()
    assert torch.equal(after == 0, before == 0)  # zeros stay zeros, nothing else becomes zero
    assert not torch.equal(after, before)  # the centroids moved


def test_binary_and_ternary_values():
    w = torch.randn(4, 3, 3, 3)
    b = binarize(w)
    assert all(len(torch.unique(b[i].abs())) == 1 for i in range(4))
    assert torch.equal(torch.sign(b), torch.where(w >= 0, 1.0, -1.0))
    assert set(torch.unique(binarize(w, scale=False)).tolist()) == {-1.0, 1.0}
    t = ternarize(w)
    assert len(torch.unique(t)) == 3 and torch.all(t[w.abs() <= 0.7 * w.abs().mean()] == 0)


@pytest.mark.parametrize("mode", ["binary", "ternary"])
def test_low_bit_training_updates_latent_weights_straight_through(mode, tiny_split):
    model = _resnet()
    hook = LowBitHook(mode)
    _one_epoch(model, tiny_split, [hook])
    first, last = hook.exclude
    assert first == "stem.0" and last == "classifier"
    conv = model.stages[3].conv1[0].weight.detach()
    assert len(torch.unique(conv)) <= (2 * conv.shape[0] if mode == "binary" else 3)
    assert len(torch.unique(model.stem[0].weight.detach())) > 3
    latent = hook.latent["stages.3.conv1.0"]
    assert not torch.equal(latent, conv) and torch.equal(hook.quantize(latent), conv)


@pytest.mark.parametrize("method", LOWRANK_METHODS.list())
def test_factorisation_saves_parameters_and_full_energy_is_nearly_exact(method):
    model = _resnet()
    x = torch.randn(2, 3, 8, 8)
    before = sum(p.numel() for p in model.parameters())
    # The last stage and the classifier only: CP's iterations are slow on every layer.
    exclude = [
        n for n, m in model.named_modules() if n and not n.startswith(("stages.7", "stages.8", "classifier"))
    ]
    done = factorise(model, method, ratio=0.4, exclude=exclude)
    assert done and sum(p.numel() for p in model.parameters()) < before
    assert model(x).shape == (2, 10)
    if method == "tucker":
        exact = _resnet()
        reference = exact(x)
        factorise(exact, "tucker", energy=1.0)  # full ranks do not save: nothing may change
        assert torch.allclose(exact(x), reference, atol=1e-5)
    with pytest.raises(InvalidInputError):
        factorise(_resnet(), method, energy=0.9, ratio=0.5)


def test_svd_of_a_linear_layer_at_full_energy_reconstructs_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 4), nn.ReLU(), nn.Linear(4, 40))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(4, 2) @ torch.randn(2, 40))  # rank 2
    x = torch.randn(3, 40)
    reference = model(x)
    (done,) = factorise(model, "svd", energy=0.999999, exclude=["2"])
    assert done.ranks == (2,) and isinstance(model[0], nn.Sequential)
    assert torch.allclose(model(x), reference, atol=1e-5)


def test_distillation_losses():
    torch.manual_seed(0)
    student, teacher = _resnet(), create_model("resnet20", num_classes=10, width=0.5).eval()
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    plain = DistillHook(teacher, alpha=0.0, input_shape=(1, 3, 8, 8))
    ce = nn.functional.cross_entropy(student(x), y)
    assert torch.allclose(plain.replace_loss(student, x, y, student(x), ce), ce)
    full = DistillHook(teacher, hints=["stages.5"], attention=["stages.2"], input_shape=(1, 3, 8, 8))
    full.attach(student)
    try:
        logits = student(x)
        loss = full.replace_loss(student, x, y, logits, ce)
        assert loss > 0 and full.parameters()[0].shape == (16, 8, 1, 1)  # student 8 -> teacher 16 channels
        loss.backward()
        assert full.parameters()[0].grad is not None
        assert all(p.grad is None for p in teacher.parameters())
    finally:
        full.detach(student)
    a = attention_map(torch.randn(2, 5, 4, 4))
    assert torch.allclose(a.norm(dim=1), torch.ones(2))
    with pytest.raises(InvalidInputError, match="not in the"):
        DistillHook(teacher, hints=["nope"]).attach(student)


def test_qat_trains_through_fake_quantization_and_round_trips_layer_types(tiny_split):
    model = _resnet()
    before = model.stages[3].conv1[0].weight.detach().clone()
    swapped = to_qat(model)
    result = train_classifier(model, tiny_split, TrainSettings(epochs=2, batch_size=16, lr=0.05))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        quantized = model(x)
    observer = model.stages[3].conv1[0].observer
    assert bool(observer.seen) and float(observer.hi) > float(observer.lo)
    from_qat(model)
    assert len(swapped) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert all(
        type(m) in (nn.Conv2d, nn.Linear) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert not any(n.endswith("observer") for n, _ in model.named_modules())
    assert all(np.isfinite(result.loss_per_epoch)) and not torch.equal(
        model.stages[3].conv1[0].weight, before
    )
    # With fake quantization the outputs differ from plain float ones only by rounding noise.
    with torch.no_grad():
        plain = model(x)
    assert not torch.equal(quantized, plain)
    assert torch.allclose(quantized, plain, atol=0.5 * float(plain.abs().max()))


def test_cp_finetunes_at_a_fifth_of_the_learning_rate_unless_told(monkeypatch, tmp_path):
    # CP layers are unstable at the usual finetuning rate (ResNet-20 on CIFAR fell 28 points at 0.01).
    import slimforge.compress.recipe._stage as stage_module
    from slimforge.compress import parse_stages
    from slimforge.compress.recipe import StageContext

    seen = []

    def spy(model, data, config, **kwargs):
        seen.append(config.lr)

    monkeypatch.setattr(stage_module, "train_classifier", spy)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
    finetune = TrainSettings(epochs=1, lr=0.01)
    for text in ("lowrank:cp:ratio=0.5", "lowrank:tucker:ratio=0.5", "lowrank:cp:ratio=0.5:lr_scale=1"):
        (stage,) = parse_stages(text)
        ctx = StageContext(
            model=copy.deepcopy(model), original=model, original_config={}, input_shape=(1, 8, 8, 8),
            splits=SimpleNamespace(train=None), finetune=finetune, work_dir=tmp_path,
        )  # fmt: skip
        outcome = stage._apply(ctx)
        assert ("learning rate" in " ".join(outcome.notes)) == (text == "lowrank:cp:ratio=0.5")
    assert seen == pytest.approx([0.002, 0.01, 0.01])
    with pytest.raises(InvalidInputError, match="lr_scale"):
        parse_stages("lowrank:cp:lr_scale=0")
