"""One interface for data-parallel training, whatever the backend.

``SerialStrategy`` (one process: laptops, CI), ``DDPStrategy`` (torch.distributed: gloo on CPU,
NCCL when the rank's device is a GPU; the default on a cluster) and ``HorovodStrategy``
(imported only when chosen). ``init(device)`` joins the world and picks this rank's device
(:func:`hpcflow.parallel.device.select_device`: ``auto`` is ``cuda:<local rank>`` where CUDA
exists), which :attr:`Strategy.device` then holds; collectives take tensors on any device and
compute on that one. The trainer calls ``init``, ``wrap``, ``all_reduce_mean`` and ``barrier``
and never branches on the backend. Methods called before ``init`` raise
:class:`StrategyNotInitialized`.

The torch.distributed rendezvous needs no launcher support: rank 0 picks a free TCP port and
its address, broadcasts them over MPI (mpi4py) when the job was started by mpiexec/srun, or
takes ``MASTER_ADDR``/``MASTER_PORT`` from torchrun, and passes them as ``tcp://`` to
``init_process_group``; nothing is written into the environment.
"""

from __future__ import annotations

import abc
import socket
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from hpcflow.parallel.device import select_device
from hpcflow.parallel.env import ClusterEnv
from hpcflow.parallel.world import World

__all__ = [
    "STRATEGIES",
    "DDPStrategy",
    "HorovodStrategy",
    "SerialStrategy",
    "Strategy",
    "StrategyNotInitialized",
    "StrategyUnavailable",
]


class StrategyNotInitialized(RuntimeError):
    """A strategy method was called before ``init()``."""

    def __init__(self, strategy: str, method: str) -> None:
        super().__init__(f"{strategy}.{method}() called before {strategy}.init()")


class StrategyUnavailable(RuntimeError):
    """The chosen backend is not installed."""

    def __init__(self, name: str, how: str) -> None:
        super().__init__(f"parallel backend {name!r} is not available: {how}")


class Strategy(abc.ABC):
    """Data-parallel backend."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._env: ClusterEnv | None = None
        self.device = torch.device("cpu")

    def _select_device(self, setting: str, local_rank: int) -> None:
        self.device = select_device(setting, local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    @property
    def env(self) -> ClusterEnv:
        if self._env is None:
            raise StrategyNotInitialized(type(self).__name__, "env")
        return self._env

    def _require(self, method: str) -> None:
        if self._env is None:
            raise StrategyNotInitialized(type(self).__name__, method)

    @abc.abstractmethod
    def init(self, device: str = "cpu") -> None:
        """Join the world (collective over all ranks) and choose this rank's device for the
        ``[parallel].device`` setting ``device``."""

    @abc.abstractmethod
    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Model and optimizer whose steps use gradients averaged over ranks."""

    @abc.abstractmethod
    def all_reduce_mean(self, x: Tensor) -> Tensor:
        """Mean of ``x`` over ranks (a new tensor on every rank)."""

    def reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Make ``.grad`` the mean over ranks before it is clipped (call after ``backward``).
        DDP has already averaged in ``backward``."""
        self._require("reduce_gradients")

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """One optimizer step with the gradients of :meth:`reduce_gradients`."""
        self._require("step")
        optimizer.step()

    def barrier(self) -> None:
        """Wait for every rank."""
        self._require("barrier")

    @property
    def initialized(self) -> bool:
        return self._env is not None

    def all_gather(self, x: Tensor) -> Tensor:
        """Concatenation along axis 0 of every rank's ``x`` (rank order); same shape on every rank."""
        self._require("all_gather")
        return x

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj``, in rank order, on every rank."""
        self._require("gather_objects")
        return [obj]

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank."""
        self._require("broadcast_object")
        return obj

    def shutdown(self) -> None:
        """Leave the world."""


class SerialStrategy(Strategy):
    """One process; every collective is the identity."""

    name = "serial"

    def init(self, device: str = "cpu") -> None:
        launched = ClusterEnv.detect()
        if launched.size > 1:  # every rank would run the whole job and overwrite the others
            raise ValueError(
                f"launched as {launched.size} ranks ({launched.launcher}): choose \"ddp\" or \"horovod\", "
                "or start one process"
            )
        self._select_device(device, 0)
        self._env = ClusterEnv(0, 1, 0, "serial", socket.gethostname())

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        self._require("wrap")
        return model, optimizer

    def all_reduce_mean(self, x: Tensor) -> Tensor:
        self._require("all_reduce_mean")
        return x.clone()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def rendezvous_address() -> str:
    """An address of this host that the other nodes can reach: the host name's address unless it
    is a loopback one (Debian-style hosts map their name to 127.0.1.1), then the address of the
    interface that routes outwards (a UDP socket "connected" to a public address sends nothing),
    else the loopback address (a single-host job)."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = "127.0.0.1"
    if not address.startswith("127."):
        return address
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed like any remote host, never sent to
            outward = probe.getsockname()[0]
        return outward if not outward.startswith("0.") else address
    except OSError:
        return address


class DDPStrategy(Strategy):
    """torch.distributed DistributedDataParallel (gloo on CPU, nccl on CUDA)."""

    name = "ddp"

    def init(self, device: str = "cpu") -> None:
        import os

        import torch.distributed as dist

        env = ClusterEnv.detect()
        self._select_device(device, env.local_rank)
        self._env = env
        if env.size == 1:
            return
        if env.launcher == "torchrun":
            address = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        else:
            address = World.detect().bcast(f"tcp://{rendezvous_address()}:{_free_port()}" if env.rank == 0 else None)
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=address, rank=env.rank, world_size=env.size)

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        self._require("wrap")
        if self.env.size == 1:
            return model, optimizer
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids), optimizer

    def all_reduce_mean(self, x: Tensor) -> Tensor:
        self._require("all_reduce_mean")
        if self.env.size == 1:
            return x.clone()
        import torch.distributed as dist

        out = x.to(self.device, copy=True)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.env.size

    def barrier(self) -> None:
        super().barrier()
        if self.env.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def all_gather(self, x: Tensor) -> Tensor:
        self._require("all_gather")
        if self.env.size == 1:
            return x
        import torch.distributed as dist

        x = x.to(self.device).contiguous()
        parts = [torch.empty_like(x) for _ in range(self.env.size)]
        dist.all_gather(parts, x)
        return torch.cat(parts)

    def gather_objects(self, obj: Any) -> list[Any]:
        self._require("gather_objects")
        if self.env.size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.env.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        self._require("broadcast_object")
        if self.env.size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def shutdown(self) -> None:
        if self._env is not None and self._env.size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        self._env = None


class HorovodStrategy(Strategy):
    """Horovod (``horovod.torch``), imported only when this strategy is initialized."""

    name = "horovod"

    def init(self, device: str = "cpu") -> None:
        try:
            import horovod.torch as hvd
        except ImportError as err:
            raise StrategyUnavailable(
                self.name, "Horovod 0.28.1 must be built with a C++17 patch: run scripts/install.sh (see README)"
            ) from err
        hvd.init()
        self._hvd: Any = hvd
        self._select_device(device, hvd.local_rank())
        self._env = ClusterEnv(hvd.rank(), hvd.size(), hvd.local_rank(), "horovod", socket.gethostname())

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        self._require("wrap")
        hvd = self._hvd
        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(optimizer, root_rank=0)
        return model, hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())

    def all_reduce_mean(self, x: Tensor) -> Tensor:
        self._require("all_reduce_mean")
        return self._hvd.allreduce(x.to(self.device), op=self._hvd.Average)

    def reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        # Horovod's optimizer averages asynchronously from backward hooks; wait for it here so
        # that clipping sees the averaged gradient (as with DDP)
        super().reduce_gradients(optimizer)
        optimizer.synchronize()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self._require("step")
        with optimizer.skip_synchronize():
            optimizer.step()

    def barrier(self) -> None:
        super().barrier()
        self._hvd.barrier()

    def all_gather(self, x: Tensor) -> Tensor:
        self._require("all_gather")
        return self._hvd.allgather(x.to(self.device))

    def gather_objects(self, obj: Any) -> list[Any]:
        self._require("gather_objects")
        return self._hvd.allgather_object(obj)

    def broadcast_object(self, obj: Any) -> Any:
        self._require("broadcast_object")
        return self._hvd.broadcast_object(obj, root_rank=0)

    def shutdown(self) -> None:
        if self._env is not None:
            self._hvd.shutdown()
        self._env = None


STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (SerialStrategy, DDPStrategy, HorovodStrategy)}
