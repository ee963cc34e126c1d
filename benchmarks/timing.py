"""What the layer benchmarks share: their common options, the forward/backward timing of
one batch and the description of the machine in each record."""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import torch


def timing_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every layer benchmark takes (batch, repeats, threads, device)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return parser


def sync(device: str) -> None:
    """Wait for the device, so a timer reads the work and not its queueing."""
    if device == "cuda":
        torch.cuda.synchronize()


def time_forward_backward(forward: Callable[[], torch.Tensor], device: str) -> tuple[float, float]:
    """Seconds of ``forward()`` and of it plus the backward of its sum."""
    sync(device)
    start = time.perf_counter()
    out = forward()
    sync(device)
    middle = time.perf_counter()
    out.sum().backward()
    sync(device)
    return middle - start, time.perf_counter() - start


def machine(device: str) -> dict:
    """The device, the CPU and the thread count, for a benchmark record."""
    return {
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
