"""Local backends: servers as threads of this process, or as worker processes (one model each)."""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import numpy as np

from privinfer.serve.base import ServerInfo, ServerPool, WorkBatch
from privinfer.serve.worker import TileServer


def _names(count: int) -> list[str]:
    return [f"local-{i}" for i in range(count)]


class ThreadPool(ServerPool):
    """N servers sharing one model in this process; each server runs its batches in order."""

    def __init__(self, count: int, capacities: list[float] | None = None, device: str = "cpu") -> None:
        self._server = TileServer(device)
        self._infos = [ServerInfo(n, c) for n, c in zip(_names(count), capacities or [1.0] * count, strict=True)]
        self._executors = {info.name: ThreadPoolExecutor(1, thread_name_prefix=info.name) for info in self._infos}

    def servers(self) -> list[ServerInfo]:
        return list(self._infos)

    def submit(self, batch: WorkBatch, server: str) -> Future:
        return self._executors[server].submit(self._server.run, batch.model, batch.inputs())

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)


_PROCESS_SERVER: TileServer | None = None


def _start_worker(device: str, threads: int) -> None:
    import torch

    global _PROCESS_SERVER
    torch.set_num_threads(threads)
    _PROCESS_SERVER = TileServer(device)


def _run_in_worker(model: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    assert _PROCESS_SERVER is not None, "worker was not initialised"
    return _PROCESS_SERVER.run(model, inputs)


class ProcessPool(ServerPool):
    """N worker processes, each with its own model and ``threads`` torch threads."""

    def __init__(
        self, count: int, capacities: list[float] | None = None, device: str = "cpu", threads: int | None = None
    ) -> None:
        self._device = device
        self._threads = threads or max(1, (os.cpu_count() or 1) // count)
        self._infos = [ServerInfo(n, c) for n, c in zip(_names(count), capacities or [1.0] * count, strict=True)]
        self._executors = {info.name: self._executor() for info in self._infos}
        # Start every worker now (and surface start-up errors here, not mid-frame).
        for executor in self._executors.values():
            executor.submit(int, 0).result()

    def servers(self) -> list[ServerInfo]:
        return list(self._infos)

    def submit(self, batch: WorkBatch, server: str) -> Future:
        return self._executors[server].submit(_run_in_worker, batch.model, batch.inputs())

    def probe(self, server: str, timeout_s: float = 1.0) -> bool:
        """Whether ``server``'s worker answers within ``timeout_s``. A worker that died (killed, out
        of memory) breaks its executor for good: a new one is started, and answers a later probe
        once its worker has loaded the model."""
        try:
            self._executors[server].submit(int, 0).result(timeout=timeout_s)
            return True
        except BrokenProcessPool:
            self._executors[server].shutdown(wait=False, cancel_futures=True)
            self._executors[server] = self._executor()
            self._executors[server].submit(int, 0)  # start loading now, not at the next probe
            return False
        except TimeoutError:  # a worker still loading the model
            return False

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        context = get_context("spawn")  # fork would copy torch's thread pools into a broken state
        return ProcessPoolExecutor(
            1, mp_context=context, initializer=_start_worker, initargs=(self._device, self._threads)
        )
