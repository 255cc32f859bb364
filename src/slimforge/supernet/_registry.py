"""The registry of supernet trainers."""

from __future__ import annotations

from slimforge.registry import Registry
from slimforge.supernet._trainer import SupernetTrainer

__all__ = ["TRAINERS"]

TRAINERS: Registry[type[SupernetTrainer]] = Registry("supernet training method")
TRAINERS.register("spos", "slimforge.supernet.spos:SPOSTrainer")
TRAINERS.register("fairnas", "slimforge.supernet.fairnas:FairNASTrainer")
TRAINERS.register("sandwich", "slimforge.supernet.sandwich:SandwichTrainer")
TRAINERS.register("darts", "slimforge.supernet.darts:DARTSTrainer")
TRAINERS.register("gdas", "slimforge.supernet.gdas:GDASTrainer")
TRAINERS.register("rsps", "slimforge.supernet.rsps:RSPSTrainer")
TRAINERS.register("fewshot", "slimforge.supernet.fewshot:FewShotTrainer")
TRAINERS.register("fbnet", "slimforge.supernet.fbnet:FBNetTrainer")
TRAINERS.register("proxyless", "slimforge.supernet.proxyless:ProxylessTrainer")
