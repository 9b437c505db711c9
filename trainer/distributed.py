"""One training process per GPU of the node, started and watched by `python -m trainer --nproc-per-node N`.

We launch the ranks ourselves rather than through torchrun because the Job's podFailurePolicy reads the
trainer's exit code: torchrun exits 1 whenever a worker fails (its ChildFailedError is an uncaught
exception), which would turn a configuration error (2, never retried) into a retry, and after a
SIGTERM it kills the workers after its shutdown timeout (30 s by default) however long the checkpoint
takes. Here every rank gets the environment torch.distributed's `env://` rendezvous reads (RANK,
LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), SIGTERM is passed on to all of them, and the
launcher exits with the first failing rank's code.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

# After one rank fails, the others are asked to stop (they may be blocked in a collective with it),
# then killed if they have not exited within this many seconds.
PEER_FAILURE_GRACE_S = 60


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def agree(flag: bool, device) -> bool:
    """True on every rank when any rank's flag is true (one all-reduce; just the flag without a process group)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def shutdown() -> None:
    """Destroy the process group once this rank needs no more collectives, as torch's docs ask ("Shutdown" in
    torch.distributed): left to interpreter exit, gloo's worker threads can abort the process (SIGABRT, exit 134,
    "terminate called without an active exception": pytorch/pytorch#190489), which the Job would retry."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing to wait for without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def exit_if_grouped(code: int) -> int:
    """`code`, or, where this rank failed with its process group still alive, an immediate exit with it.

    Interpreter teardown with gloo's or NCCL's threads alive can abort the process (SIGABRT, 134, "terminate
    called without an active exception"), which would turn a configuration error (2) into a retry; and
    destroying the group could wait on peers still in a collective. `os._exit` skips both; our output is
    flushed first (Python's docs: it neither runs cleanup handlers nor flushes stdio buffers).
    """
    dist = sys.modules.get("torch.distributed")  # never imported: no group, and `check` stays free of torch
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        return code
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], nproc: int) -> int:
    """Run `python -m trainer <argv>` as `nproc` ranks on this node and wait for all of them."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc)}
    procs = [subprocess.Popen([sys.executable, "-m", "trainer", *argv],
                              env={**env, "RANK": str(i), "LOCAL_RANK": str(i)}) for i in range(nproc)]

    def forward(signum, frame):
        for p in procs:
            if p.returncode is None:
                p.send_signal(signum)

    # One waiting thread per rank, so that exits arrive in the order they happened: a rank whose peer failed
    # fails too (a collective loses its peer, exit 1) moments later, and the first exit is the cause.
    exits: queue.Queue[tuple[int, int]] = queue.Queue()
    for i, p in enumerate(procs):
        threading.Thread(target=lambda i=i, p=p: exits.put((i, p.wait())), daemon=True).start()
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code, failed_at, running = 0, None, len(procs)
        while running:
            try:
                i, returncode = exits.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                running -= 1
                if returncode != 0 and failed_at is None:
                    code, failed_at = returncode, time.monotonic()
                    log.error("rank %d exited with %d: stopping the other ranks", i, returncode)
                    forward(signal.SIGTERM, None)
            if failed_at is not None and time.monotonic() - failed_at > PEER_FAILURE_GRACE_S:
                for p in procs:
                    if p.returncode is None:
                        p.kill()
        return code if code >= 0 else 128 - code  # killed by signal N: the shell's 128 + N
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
