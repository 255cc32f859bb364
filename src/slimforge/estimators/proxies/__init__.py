"""Zero-cost proxies behind a registry: ``get_proxy("naswot").score(model, (images, labels))``."""

from __future__ import annotations

from typing import Any

from slimforge.estimators.proxies._base import Batch, Proxy, ProxyNotApplicableError
from slimforge.registry import Registry

__all__ = ["PROXIES", "Batch", "Proxy", "ProxyNotApplicableError", "get_proxy", "list_proxies"]

PROXIES: Registry[type[Proxy]] = Registry("proxy")
for _name, _ref in [
    ("synflow", "slimforge.estimators.proxies._gradient:SynflowProxy"),
    ("naswot", "slimforge.estimators.proxies._activation:NaswotProxy"),
    ("jacob_cov", "slimforge.estimators.proxies._activation:JacobCovProxy"),
    ("meco", "slimforge.estimators.proxies._activation:MecoProxy"),
    ("snip", "slimforge.estimators.proxies._gradient:SnipProxy"),
    ("grasp", "slimforge.estimators.proxies._gradient:GraspProxy"),
    ("fisher", "slimforge.estimators.proxies._gradient:FisherProxy"),
    ("grad_norm", "slimforge.estimators.proxies._gradient:GradNormProxy"),
    ("zico", "slimforge.estimators.proxies._zico:ZicoProxy"),
    ("num_params", "slimforge.estimators.proxies._cost:NumParamsProxy"),
    ("macs", "slimforge.estimators.proxies._cost:MacsProxy"),
]:
    PROXIES.register(_name, _ref)


def get_proxy(name: str, **kwargs: Any) -> Proxy:
    """The proxy registered as ``name``; kwargs go to its constructor (``get_proxy("zico", parts=2)``)."""
    return PROXIES.get(name)(**kwargs)


def list_proxies() -> list[str]:
    """Names of every registered proxy."""
    return PROXIES.list()
