"""Executors: evaluate one function over many items (candidates, measurements), results in input order.

The search hands a batch of candidates to an executor; which executor runs them changes where the
work happens, never the results. ``inprocess`` is the default and costs nothing; ``process``
spreads the batch over a pool of spawned worker processes on this machine; ``ray`` spreads it
over a Ray cluster, and can pin tasks to nodes through Ray custom resources (device affinity).

Work crosses process boundaries by pickle (as ``multiprocessing`` and Ray always do), so with
``process`` and ``ray`` the function must be importable (a module-level function, or a
``functools.partial`` of one). Nothing is stored with pickle.

>>> with make_executor("process", workers=2) as ex:
...     errors = ex.map(evaluate_candidate, genomes)
"""

from __future__ import annotations

import inspect
import logging
import multiprocessing
import os
import pickle
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent import futures as cf
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar, TypeVar

from slimforge.errors import InvalidInputError, MissingDependencyError, SlimforgeError
from slimforge.io import exit_with_parent
from slimforge.registry import Registry

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "InProcessExecutor",
    "ProcessPoolExecutor",
    "RayExecutor",
    "make_executor",
]

T = TypeVar("T")
R = TypeVar("R")


class ExecutorError(SlimforgeError):
    """The executor itself failed (a worker died, Ray could not start); not an error raised by ``fn``."""


def _apply(fn: Callable[[T], R], start: int, items: Sequence[T]) -> list[R]:
    """Call ``fn`` on each item of one chunk; an error is tagged with the item's index in the batch."""
    out = []
    for offset, item in enumerate(items):
        try:
            out.append(fn(item))
        except Exception as exc:
            # The note travels with the exception across processes (it lives in __dict__).
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised by {_name_of(fn)} on item {start + offset} of the batch)")
            raise
    return out


def _name_of(fn: Callable) -> str:
    # functools.partial has no __qualname__ of its own: name the function it wraps.
    inner = getattr(fn, "func", None)
    return getattr(fn, "__qualname__", None) or getattr(inner, "__qualname__", None) or repr(fn)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _check_positive_int(value: Any, what: str, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
    return value


def _available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Executor(ABC):
    """Evaluates a function over items and returns the results in input order.

    Subclasses implement :meth:`_map` (and :meth:`_close` when they hold resources). An exception
    raised by ``fn`` on any item is raised again in the caller, with its type and message.
    """

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self._closed = False

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]``, computed by this executor; results in input order."""
        if not callable(fn):
            raise InvalidInputError(f"executor {self.name!r} needs a callable to map, got {fn!r}")
        if isinstance(items, (AbstractSet, Mapping)) or not hasattr(items, "__iter__"):
            raise InvalidInputError(
                f"executor {self.name!r} maps over an ordered sequence of items, got {type(items).__name__}; "
                "pass a list"
            )
        if self._closed:
            raise InvalidInputError(
                f"executor {self.name!r} is closed; create a new one with make_executor({self.name!r})"
            )
        batch = list(items)
        if not batch:
            return []
        results = self._map(fn, batch)
        if len(results) != len(batch):
            raise ExecutorError(
                f"executor {self.name!r} returned {len(results)} results for {len(batch)} items"
            )
        return results

    @abstractmethod
    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        """Evaluate ``fn`` on every item (a non-empty list); results in input order."""

    def close(self) -> None:
        """Release workers; closing twice is fine. A closed executor refuses :meth:`map`."""
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:
        """Release what the executor holds (nothing by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}{', closed' if self._closed else ''})"


class InProcessExecutor(Executor):
    """Evaluates items one after another in this process: no overhead, any callable (the default)."""

    name = "inprocess"

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        return _apply(fn, 0, items)


def _init_worker(threads: int | None, parent_pid: int | None = None) -> None:
    # Runs in each spawned worker before any task is unpickled, so the variables are seen by
    # torch/numpy when the task's module imports them; workers x threads should not exceed the cores.
    if parent_pid is not None:
        # A parent killed with -9 cannot shut its pool down: each worker watches for it itself,
        # or it would go on evaluating (and holding memory) with nobody to read its results.
        exit_with_parent(parent_pid)
    if threads is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class ProcessPoolExecutor(Executor):
    """Evaluates items in a pool of worker processes on this machine.

    Workers are started with the ``spawn`` method (safe with torch and threads, same on every OS),
    once, on the first :meth:`map`, and reused until :meth:`close`. They end by themselves within
    a second if this process dies without closing the pool (``kill -9``): no orphans.

    Args:
        workers: number of worker processes; default: the CPU cores available to this process.
        chunksize: items sent to a worker at a time; raise it when each item is cheap.
        threads_per_worker: intra-op threads of torch/BLAS in each worker; default: the cores
            shared out between the workers (at least 1), so the pool does not oversubscribe them.
    """

    name = "process"

    def __init__(
        self, workers: int | None = None, *, chunksize: int = 1, threads_per_worker: int | None = None
    ) -> None:
        super().__init__()
        self.workers = _check_positive_int(workers, "workers") or _available_cpus()
        self.chunksize = _check_positive_int(chunksize, "chunksize", allow_none=False)
        self.threads_per_worker = _check_positive_int(threads_per_worker, "threads_per_worker") or max(
            1, _available_cpus() // self.workers
        )
        self._pool: cf.ProcessPoolExecutor | None = None

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads_per_worker, os.getpid()),
            )
        return self._pool

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise InvalidInputError(
                f"the 'process' executor sends {_name_of(fn)} to worker processes, so it must be "
                f"picklable ({exc}); use a module-level function or a functools.partial of one, "
                "or the 'inprocess' executor"
            ) from exc
        pool = self._get_pool()
        jobs = [pool.submit(_apply, fn, a, items[a:b]) for a, b in _chunks(len(items), self.chunksize)]
        results: list[R] = []
        try:
            for job in jobs:
                results.extend(job.result())
        except BrokenProcessPool as exc:
            self._discard_pool()
            raise ExecutorError(
                f"a worker process of the 'process' executor died while evaluating {_name_of(fn)} "
                "(killed, out of memory, or a crash in native code); the pool was discarded and the "
                "next map starts a fresh one"
            ) from exc
        except BaseException:
            for job in jobs:
                job.cancel()
            raise
        return results

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _close(self) -> None:
        self._discard_pool()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "the 'ray' executor needs Ray, which is not installed; pip install 'slimforge[ray]' "
            f"(import failed: {exc})"
        ) from exc
    return ray


class RayExecutor(Executor):
    """Evaluates items as Ray tasks, on a local instance or a running cluster.

    Args:
        address: None starts a local Ray instance (shut down again by :meth:`close`); ``"auto"``
            or ``"ray://host:port"`` connects to a running cluster (left running). If Ray is
            already initialised in this process, that instance is used as it is (``num_cpus``,
            ``node_resources`` and ``temp_dir`` are then ignored) and left running.
        num_cpus: CPUs of the local instance (default: all); only with ``address=None``.
        resources: Ray resources each task requires besides its CPU, e.g. ``{"pi5": 1}`` to run
            it only on nodes started with ``--resources='{"pi5": 1}'`` (device affinity).
        num_cpus_per_task: CPUs each task reserves.
        node_resources: custom resources the local instance declares (only with ``address=None``),
            e.g. ``{"pi5": 2}``, to try out affinity on one machine.
        temp_dir: Ray's session directory for the local instance (default: Ray's own); keep
            it short, as Unix socket paths inside it are limited to about 100 characters.

    Tasks asking for resources that no node of the cluster offers would wait forever, so
    :meth:`map` refuses them with a message naming the resource instead.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        resources: dict | None = None,
        *,
        num_cpus_per_task: float = 1.0,
        node_resources: dict | None = None,
        temp_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self._started = False
        num_cpus = _check_positive_int(num_cpus, "num_cpus")
        self.resources = _check_resources(resources, "resources")
        node_resources = _check_resources(node_resources, "node_resources")
        if not (isinstance(num_cpus_per_task, (int, float)) and num_cpus_per_task >= 0):
            raise InvalidInputError(f"num_cpus_per_task must be a number >= 0, got {num_cpus_per_task!r}")
        self.num_cpus_per_task = float(num_cpus_per_task)
        if address is not None and (num_cpus is not None or node_resources or temp_dir is not None):
            raise InvalidInputError(
                "num_cpus, node_resources and temp_dir describe a local Ray instance, but "
                f"address={address!r} connects to a running cluster whose nodes declare their own; "
                "drop them or use address=None"
            )
        ray = self._ray = _import_ray()
        if not ray.is_initialized():
            hint = (
                "check that Ray works here (`ray start --head` in a shell shows why it does not)"
                if address is None
                else "start the cluster with `ray start --head`, or use address=None for a local instance"
            )
            _start_ray(ray, address, num_cpus, node_resources, temp_dir, what="", hint=hint)
            self._started = True
        self._task = ray.remote(_apply)

    def _options(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus_per_task, "resources": dict(self.resources)}

    def _check_feasible(self) -> None:
        have = self._ray.cluster_resources()
        wanted = {"CPU": self.num_cpus_per_task, **self.resources}
        for res, amount in wanted.items():
            if amount > have.get(res, 0.0):
                offered = ", ".join(
                    f"{k}={v:g}" for k, v in sorted(have.items()) if not k.startswith("node:")
                )
                raise InvalidInputError(
                    f"each Ray task asks for {res}={amount:g}, but no node of the cluster offers that much "
                    f"(cluster: {offered}); start a node with "
                    f"`ray start --resources='{{\"{res}\": {amount:g}}}'` or lower the request"
                )

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        ray = self._ray
        self._check_feasible()
        fn_ref = ray.put(fn)  # shipped once, not once per task
        task = self._task.options(**self._options())
        refs = [task.remote(fn_ref, a, items[a:b]) for a, b in _chunks(len(items), 1)]
        # A failed batch does not cancel its other tasks: they finish and their results are dropped.
        # ray.cancel on a task that completes at that moment ends this whole process in Ray 2.60
        # ("Check failed: ... Tried to complete task that was not pending", task_manager.cc), which
        # is what stopped CI at 59 % with no report; see BENCHMARKS.md, issue 18.
        try:
            chunks = ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ray.exceptions.RayError):
                # Ray itself failed in the worker, typically unpickling fn: its module is missing there.
                raise ExecutorError(
                    f"a Ray worker could not run {_name_of(fn)}: {cause}; the function's module must be "
                    "importable on every node (install the package there, or use the 'process' executor)"
                ) from exc
            if isinstance(cause, Exception):
                # Raise what fn raised, with its own type and message; the remote traceback is
                # kept as the cause.
                raise cause from exc
            raise
        except ray.exceptions.RayError as exc:
            raise ExecutorError(
                f"Ray failed while evaluating {_name_of(fn)}: {exc}; a worker or node was lost "
                "(killed, out of memory); check `ray status`"
            ) from exc
        return [r for chunk in chunks for r in chunk]

    def _close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def _start_ray(
    ray: Any,
    address: str | None,
    num_cpus: int | None,
    resources: Mapping[str, float] | None,
    temp_dir: str | os.PathLike | None,
    *,
    what: str,
    hint: str = "",
) -> None:
    """``ray.init``: a local instance (``address=None``) or a running cluster; failure as ExecutorError.

    ``what`` names the caller in the message ("the measurement farm "), ``hint`` is added after it.
    """
    try:
        if address is None:
            ray.init(
                num_cpus=num_cpus,
                resources=dict(resources) if resources else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                _temp_dir=None if temp_dir is None else os.fspath(temp_dir),
                # The local workers import what this process can import (as spawned
                # processes do), so functions from scripts and test modules resolve.
                runtime_env={"env_vars": {"PYTHONPATH": _python_path()}},
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:
        where = "start a local Ray instance" if address is None else f"connect to Ray at {address!r}"
        raise ExecutorError(f"{what}cannot {where}: {exc}" + (f"; {hint}" if hint else "")) from exc


def _python_path() -> str:
    paths = [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)]
    return os.pathsep.join(dict.fromkeys(paths))


def _check_resources(resources: Any, what: str) -> dict[str, float]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise InvalidInputError(f"{what} must be a mapping of resource name to amount, got {resources!r}")
    out = {}
    for key, amount in resources.items():
        if not isinstance(key, str) or key in ("CPU", "GPU", "memory"):
            raise InvalidInputError(
                f"{what} key {key!r} must be the name of a custom resource (CPUs go in num_cpus)"
            )
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise InvalidInputError(f"{what}[{key!r}] must be a number >= 0, got {amount!r}")
        out[key] = float(amount)
    return out


EXECUTORS: Registry[type[Executor]] = Registry("executor")
EXECUTORS.register("inprocess", InProcessExecutor)
EXECUTORS.register("process", ProcessPoolExecutor)
EXECUTORS.register("ray", RayExecutor)


def make_executor(name: str, **kwargs: Any) -> Executor:
    """Create the executor registered as ``name`` (``inprocess``, ``process``, ``ray``) with ``kwargs``.

    An unknown name raises :class:`~slimforge.errors.UnknownNameError` with close matches; an
    argument the executor does not take raises :class:`~slimforge.errors.InvalidInputError`.
    """
    cls = EXECUTORS.get(name)
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        accepted = ", ".join(signature.parameters) or "no arguments"
        raise InvalidInputError(f"executor {name!r}: {exc} (it takes: {accepted})") from None
    return cls(**kwargs)
