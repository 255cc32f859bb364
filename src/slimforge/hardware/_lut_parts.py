"""A layer-wise space's networks cut into the parts a latency lookup table measures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware.input_shape import parse_input_shape

__all__ = ["LayerwiseParts", "split_layerwise"]


@dataclass(frozen=True, eq=False)
class LayerwiseParts:
    """A layer-wise space's networks cut into the parts a lookup table measures.

    Attributes:
        stem: the fixed layers before the first searchable one, and its input shape.
        layers: per gene, per choice, the block in isolation (None for the identity).
        layer_shapes: per gene, the input shape every choice of that layer receives.
        tokens: per gene, per choice, a short name of the choice.
        tail: the fixed layers after the last searchable one (head, pooling, classifier).
        tail_shape: the tail's input shape.
    """

    stem: nn.Module
    stem_shape: tuple[int, ...]
    layers: tuple[tuple[nn.Module | None, ...], ...]
    layer_shapes: tuple[tuple[int, ...], ...]
    tokens: tuple[tuple[str, ...], ...]
    tail: nn.Module
    tail_shape: tuple[int, ...]


class _Tail(nn.Module):
    """head → global pooling → flatten → dropout → classifier, as the layer-wise network runs them."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.head, self.pool, self.dropout, self.classifier = net.head, net.pool, net.dropout, net.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.flatten(self.pool(self.head(x)), 1)))


_PARTS = ("stem", "layers", "head", "pool", "dropout", "classifier")


def split_layerwise(space: Any, input_shape: Sequence[int] | str, num_classes: int = 10) -> LayerwiseParts:
    """Cut the networks of a layer-wise space into stem, per-layer choices and tail.

    Only the public ``build(genome)`` is used: one network per choice index ``c`` (every gene set
    to ``c``, or to 0 where it has fewer choices) gives each layer's block ``c`` as its
    ``layers[i]``. The input shape of each layer is recorded while running the networks, and the
    cut is checked: the parts run in sequence give exactly the network's output.

    Raises:
        InvalidInputError: for a space whose networks are not ``stem → layers → head → pool →
            classifier`` with one layer per gene (e.g. the cell-based nb201).
    """
    shape = parse_input_shape(input_shape)
    choices = list(space.num_choices)
    nets = []
    for c in range(max(choices)):
        net = space.build(tuple(c if c < n else 0 for n in choices), num_classes)
        missing = [p for p in _PARTS if not hasattr(net, p)]
        if missing or not isinstance(net.layers, nn.Sequential) or len(net.layers) != len(choices):
            raise InvalidInputError(
                f"space {space.name!r} does not split into per-layer choices (its networks lack "
                f"{', '.join(missing) or 'one layer per gene'}); "
                "lookup tables need a layer-wise space such as mbv2"
            )
        nets.append(net.eval())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    seen: list[list[tuple[int, ...]]] = []
    with torch.no_grad():
        for net in nets:
            shapes = []
            h = net.stem(x)
            for layer in net.layers:
                shapes.append(tuple(h.shape))
                h = layer(h)
            tail = _Tail(net).eval()
            shapes.append(tuple(h.shape))
            if not torch.allclose(tail(h), net(x), rtol=1e-4, atol=1e-5):
                raise InvalidInputError(
                    f"space {space.name!r}: its networks do not run "
                    "stem → layers → head → pool → classifier in "
                    "sequence, so a lookup table cannot be built from their parts"
                )
            seen.append(shapes)
    if any(s != seen[0] for s in seen):
        raise InvalidInputError(
            f"space {space.name!r}: the choices of a layer change its output shape; cannot tabulate"
        )
    layers, tokens = [], []
    for i, n in enumerate(choices):
        blocks = tuple(
            None if isinstance(nets[c].layers[i], nn.Identity) else nets[c].layers[i] for c in range(n)
        )
        layers.append(blocks)
        tokens.append(tuple(_token(space, nets, i, c) for c in range(n)))
    return LayerwiseParts(
        stem=nets[0].stem,
        stem_shape=shape,
        layers=tuple(layers),
        layer_shapes=tuple(seen[0][:-1]),
        tokens=tuple(tokens),
        tail=_Tail(nets[0]),
        tail_shape=seen[0][-1],
    )


def _token(space: Any, nets: list[nn.Module], layer: int, choice: int) -> str:
    # The space's string of a genome names every layer's choice when it is one token per gene.
    genome = tuple(choice if j == layer else 0 for j in range(space.num_genes))
    tokens = space.to_string(genome).split("-")
    return tokens[layer] if len(tokens) == space.num_genes else f"choice{choice}"
