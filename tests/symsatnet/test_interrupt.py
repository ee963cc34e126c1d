"""Ctrl-C stops a long mix (issue 24): the CPU sweep loops poll for signals between sweeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, torch
from symsatnet import functional as F
torch.manual_seed(0)
n = 60
C = torch.randn(n + 1, n + 1, dtype=torch.float64)
C = C + C.T
z = torch.rand(2, n, dtype=torch.float64)
given = torch.zeros(2, n, dtype=torch.bool)
given[:, :5] = True
print("started", flush=True)
try:
    {call}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""

CALLS = {
    "mix": "F.mix(C, z, given, k=8, max_iter=2**31 - 1, eps=0.0)",
    "smix": "F.smix(C[:, :12].contiguous(), z, given, k=8, max_iter=2**31 - 1, eps=0.0)",
}


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize("name", sorted(CALLS))
def test_ctrl_c_stops_a_long_mix(name: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(call=CALLS[name])], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "started"
        time.sleep(1.0)  # well inside the 2^31 sweeps
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        stopped = time.perf_counter() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3 and "interrupted" in out, (process.returncode, out, err)
    assert stopped < 5
