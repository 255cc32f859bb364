"""Compression recipes: ``"prune:l1:0.5,distill:teacher=resnet20,quantize:int8"``.

A recipe is stages separated by commas; a stage is its name, then colon-separated fields, each
either positional or ``key=value``. Per-layer settings use ``@PATH=VALUE`` (e.g. a per-layer
pruning ratio ``@stages.8=0.7``). Which names exist and what their fields mean is up to the stage
classes in :data:`slimforge.compress.STAGES`; this module only splits the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimforge.errors import InvalidInputError

__all__ = ["StageSpec", "parse_recipe"]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a recipe, split: ``name``, positional ``args``, ``key=value`` ``options``."""

    name: str
    args: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    text: str

    def option(self, key: str, default: str | None = None) -> str | None:
        """The value of ``key=...`` (the last one given), or ``default``."""
        value = default
        for k, v in self.options:
            if k == key:
                value = v
        return value


def parse_recipe(recipe: str) -> list[StageSpec]:
    """Split a recipe into :class:`StageSpec` s (names are checked later, against the registry)."""
    if not isinstance(recipe, str) or not recipe.strip():
        raise InvalidInputError(
            f"empty recipe {recipe!r}; write stages separated by commas, e.g. prune:l1:0.5,quantize:int8"
        )
    stages = []
    for text in recipe.split(","):
        text = text.strip()
        if not text:
            raise InvalidInputError(f"recipe {recipe!r} has an empty stage (two commas in a row?)")
        name, *fields = [f.strip() for f in text.split(":")]
        args: list[str] = []
        options: list[tuple[str, str]] = []
        for field in fields:
            if "=" in field:
                key, _, value = field.partition("=")
                if not key.strip() or not value.strip():
                    raise InvalidInputError(f"recipe stage {text!r}: {field!r} is not key=value")
                options.append((key.strip(), value.strip()))
            elif options:
                raise InvalidInputError(
                    f"recipe stage {text!r}: positional field {field!r} after key=value fields; put it first"
                )
            elif not field:
                raise InvalidInputError(f"recipe stage {text!r} has an empty field")
            else:
                args.append(field)
        stages.append(StageSpec(name.lower(), tuple(args), tuple(options), text))
    return stages
