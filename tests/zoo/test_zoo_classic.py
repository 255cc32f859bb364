"""ShuffleNetV1/V2, SqueezeNet 1.1, ResNet-18 and CIFAR ResNet-20: published costs, shapes, argument checks."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from slimforge.errors import InvalidInputError
from slimforge.zoo import create_model

# name -> (input size, num_classes, kwargs, published params, published MACs)
PUBLISHED = {
    # Zhang et al., "ShuffleNet", CVPR 2018, Tables 1/4: ShuffleNet 1x (g=3) ~1.9M params, 140 MFLOPs (MACs).
    "shufflenet_v1": (224, 1000, {"groups": 3}, 1.9e6, 140e6),
    # Ma et al., "ShuffleNet V2", ECCV 2018, Table 5: 1.0x, 2.3M params, 146M FLOPs (MACs).
    "shufflenet_v2": (224, 1000, {}, 2.3e6, 146e6),
    # Iandola et al., "SqueezeNet", 2016 (v1.1 in the authors' release): 1.24M params, ~350M MACs
    # (conv multiply-accumulates only; see slimforge.zoo.squeezenet for the ~352M variant).
    "squeezenet_1_1": (224, 1000, {}, 1.24e6, 350e6),
    # He et al., "Deep Residual Learning", CVPR 2016, Table 1: ResNet-18, 11.7M params, 1.8 GFLOPs (MACs; 1.82G).
    "resnet18": (224, 1000, {}, 11.7e6, 1.82e9),
    # He et al. 2016, §4.2 / Table 6: CIFAR-10 ResNet-20, 0.27M params; ~41M MACs at 32x32.
    "resnet20": (32, 10, {}, 0.27e6, 41e6),
}
MODELS = sorted(PUBLISHED)
TOLERANCE = 0.03


def _params_and_macs(model: torch.nn.Module, size: int) -> tuple[int, float]:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.randn(1, 3, size, size))
    return sum(p.numel() for p in model.parameters()), fc.get_total_flops() / 2


@pytest.mark.parametrize(
    "name",
    # A 224x224 forward under the flop counter takes 1-3 s on a shared 2-core machine.
    [pytest.param(n, marks=pytest.mark.slow) if PUBLISHED[n][0] > 64 else n for n in MODELS],
)
def test_params_and_macs_match_the_published_figures(name: str) -> None:
    size, num_classes, kwargs, params, macs = PUBLISHED[name]
    torch.manual_seed(0)
    ours_params, ours_macs = _params_and_macs(create_model(name, num_classes=num_classes, **kwargs), size)
    assert ours_params == pytest.approx(params, rel=TOLERANCE)
    assert ours_macs == pytest.approx(macs, rel=TOLERANCE)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", MODELS)
def test_ten_class_output_at_small_inputs(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert out.abs().max() < 1e3  # initialised so that untrained logits stay in a sane range


@pytest.mark.parametrize(
    "name,width",
    [
        ("shufflenet_v1", 0.0),
        ("shufflenet_v1", 2.5),
        ("shufflenet_v1", 0.1),
        ("shufflenet_v2", -1.0),
        ("shufflenet_v2", 0.75),
        ("shufflenet_v2", 3.0),
        ("squeezenet_1_1", 0.0),
        ("squeezenet_1_1", 0.5),
        ("resnet18", -0.5),
        ("resnet18", 2.0),
        ("resnet20", 0.0),
        ("resnet20", -1.0),
    ],
)
def test_unsupported_width_is_rejected_with_the_value(name: str, width: float) -> None:
    with pytest.raises(InvalidInputError, match=f"width={width!r}"):
        create_model(name, num_classes=10, width=width)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_is_rejected_with_the_accepted_ones(name: str) -> None:
    with pytest.raises(InvalidInputError, match="'dropuot'.*did you mean dropout"):
        create_model(name, num_classes=10, dropuot=0.1)
    with pytest.raises(InvalidInputError, match="num_classes=0"):
        create_model(name, num_classes=0)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_v1_builds_every_paper_group_count(groups: int) -> None:
    model = create_model("shufflenet_v1", num_classes=10, groups=groups).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert max(c.groups for c in convs) == groups
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_shufflenet_v1_rejects_groups_outside_the_paper() -> None:
    with pytest.raises(InvalidInputError, match="groups=5"):
        create_model("shufflenet_v1", num_classes=10, groups=5)


@pytest.mark.parametrize(
    ("name", "width"),
    [
        ("shufflenet_v1", 0.5),
        ("shufflenet_v1", 1.5),
        ("shufflenet_v2", 0.5),
        ("shufflenet_v2", 2.0),
        ("resnet20", 0.5),
        ("resnet20", 1.7),
    ],
)
def test_supported_widths_scale_the_cost(name: str, width: float) -> None:
    base_params, base_macs = _params_and_macs(create_model(name, num_classes=10), 32)
    params, macs = _params_and_macs(create_model(name, num_classes=10, width=width), 32)
    assert (params < base_params) == (width < 1.0) and (macs < base_macs) == (width < 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_onnxruntime(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["x"])
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))
