"""The BoTorch half of ``bo``: fit the Gaussian processes and pick a batch from a candidate pool.

Imported only when ``bo`` proposes, so that botorch stays an optional dependency.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

__all__ = ["select_batch"]

Hyper = Mapping[str, "object"]


def select_batch(
    X: np.ndarray,
    Y: np.ndarray,
    pool: np.ndarray,
    ref: np.ndarray,
    *,
    q: int,
    mc_samples: int,
    seed: int,
    acquisition: str,
    baseline: np.ndarray,
    fit_rows: np.ndarray | None,
    hyper: Hyper | None,
    kernel: str = "additive",
    screen: int = 40,
) -> tuple[list[int], Hyper | None]:
    """Indices of ``q`` rows of ``pool`` by sequential greedy log-hypervolume improvement.

    Args:
        X / Y: evaluated genomes (as floats) and their scaled objectives (minimised).
        pool: candidate genomes.
        ref: reference point in the scaled objective space.
        q / mc_samples / seed: batch size, quasi-Monte-Carlo samples, seed of every draw.
        acquisition: ``qlognehvi`` (noisy: integrates over the uncertain front of ``baseline``)
            or ``qlogehvi`` (noise-free: improvement over the observed front).
        baseline: rows of ``X`` that may be on the front (NEHVI's baseline).
        fit_rows: rows the hyperparameters are fitted on (None: keep ``hyper``).
        hyper: hyperparameters of an earlier fit (the start of a new fit, or used as they are).
        kernel: ``additive`` or ``product`` (see :func:`_model`).
        screen: the acquisition ranks the ``q + screen`` pool rows with the best optimistic
            hypervolume improvement (see :func:`_shortlist`).

    Returns:
        The chosen pool rows and the hyperparameters used.
    """
    import torch
    from botorch.acquisition.multi_objective.logei import (
        qLogExpectedHypervolumeImprovement,
        qLogNoisyExpectedHypervolumeImprovement,
    )
    from botorch.sampling import SobolQMCNormalSampler
    from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning

    _pure_python_log_ehvi()
    dtype = torch.float64
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # botorch's input-scaling and optimiser notes
        torch.manual_seed(seed)
        train_X = torch.as_tensor(X, dtype=dtype)
        # BoTorch maximises: negate the (minimised) objectives and the reference point.
        train_Y = -torch.as_tensor(Y, dtype=dtype)
        if fit_rows is not None:
            hyper = _fit(train_X[fit_rows], train_Y[fit_rows], hyper, kernel)
        model = _model(train_X, train_Y, hyper, kernel)
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
        ref_max = (-torch.as_tensor(ref, dtype=dtype)).tolist()
        if acquisition == "qlognehvi":
            acq = qLogNoisyExpectedHypervolumeImprovement(
                model=model, ref_point=ref_max, X_baseline=train_X[baseline], sampler=sampler
            )
        else:
            partitioning = FastNondominatedPartitioning(
                ref_point=torch.tensor(ref_max, dtype=dtype), Y=train_Y
            )
            acq = qLogExpectedHypervolumeImprovement(
                model=model, ref_point=ref_max, partitioning=partitioning, sampler=sampler
            )
        shortlist = _shortlist(model, torch.as_tensor(pool, dtype=dtype), train_Y, ref_max, q + screen)
        choices = torch.as_tensor(pool[shortlist], dtype=dtype)
        chosen: list[int] = []
        available = torch.ones(len(choices), dtype=torch.bool)
        with torch.no_grad():
            for _ in range(min(q, len(choices))):
                idx = torch.nonzero(available).flatten()
                values = torch.cat(
                    [acq(choices[idx[k : k + 256]].unsqueeze(1)) for k in range(0, len(idx), 256)]
                )
                best = int(idx[int(torch.argmax(values))])
                chosen.append(best)
                available[best] = False
                acq.set_X_pending(choices[chosen])
    return [int(shortlist[i]) for i in chosen], hyper


def _pure_python_log_ehvi() -> None:
    """Keep BoTorch from compiling its fused C++ log-EHVI kernel on first use.

    The compile needs a C++ compiler and tens of seconds, writes under the user's cache, and
    waits for ever on the lock a killed process left there (a search hung on it here); the
    pure-Python path gives the same values.
    """
    from botorch.acquisition.multi_objective import logei

    if getattr(logei, "_C", None) is None and hasattr(logei, "_load_attempted"):
        logei._load_attempted = True


def _shortlist(model, pool, train_Y, ref_max, size: int) -> np.ndarray:
    """Pool rows whose optimistic prediction (mean + 1 std) improves the observed front most.

    One joint-free posterior over the whole pool costs little; the MC acquisition's batched
    joint posterior costs per candidate, so it only ranks this shortlist.
    """
    import torch

    from slimforge.search.indicators import hypervolume

    if len(pool) <= size:
        return np.arange(len(pool))
    with torch.no_grad():
        posterior = model.posterior(pool)
        optimistic = (posterior.mean + posterior.variance.clamp_min(0).sqrt()).numpy()
    # Back to minimisation for slimforge's hypervolume.
    ref = -np.asarray(ref_max)
    front = -train_Y.numpy()
    front = front[np.all(front < ref, axis=1)]
    base = hypervolume(front, ref) if len(front) else 0.0
    gain = np.array([hypervolume(np.vstack([front, -y]), ref) - base for y in optimistic])
    # Ties (no optimistic improvement) are broken by the optimistic distance past the reference.
    slack = np.clip(optimistic + ref, None, 0).sum(axis=1)
    return np.sort(np.lexsort((-slack, -gain))[:size])


def _model(train_X, train_Y, hyper, kernel: str = "additive"):
    """One GP per objective (batched), every gene categorical.

    ``additive``: a sum over genes of one-gene categorical kernels (each with its own scale), so
    the effect of a gene's choice generalises across the other genes' choices, which is how
    accuracy and latency of a cell mostly behave; it ranks unseen NAS-Bench-201 cells better
    than the product kernel from 20-50 evaluations. ``product``: BoTorch's
    ``MixedSingleTaskGP`` with every dimension categorical (one ARD categorical kernel).
    """
    import torch
    from botorch.models import MixedSingleTaskGP, SingleTaskGP
    from botorch.models.kernels.categorical import CategoricalKernel
    from gpytorch.kernels import AdditiveKernel, ScaleKernel

    d = train_X.shape[1]
    if kernel == "product":
        model = MixedSingleTaskGP(train_X, train_Y, cat_dims=list(range(d)))
    else:
        batch = torch.Size([train_Y.shape[-1]]) if train_Y.shape[-1] > 1 else torch.Size([])
        covar = AdditiveKernel(
            *(
                ScaleKernel(CategoricalKernel(active_dims=[i], batch_shape=batch), batch_shape=batch)
                for i in range(d)
            )
        )
        model = SingleTaskGP(train_X, train_Y, covar_module=covar)
    if hyper is not None:
        params = dict(model.named_parameters())
        for name, value in hyper.items():
            params[name].data.copy_(value)
    model.eval()
    return model


def _fit(train_X, train_Y, start, kernel):
    """Maximum-marginal-likelihood hyperparameters, from ``start`` when given."""
    from botorch.exceptions import ModelFittingError
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = _model(train_X, train_Y, start, kernel)
    model.train()
    try:
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    except ModelFittingError:
        if start is not None:  # keep what worked before rather than fail the search
            return start
    return {name: p.detach().clone() for name, p in model.named_parameters()}
