"""Peak memory of joint training vs one task alone, each in its own process.

A child process (``python -m mtl.bench.memory SPEC``) builds the product session for the tasks it is
given, trains the custom loop over a fixed list of batches and prints its peak resident set size.

Training memory peaks on the batch with the largest activations: the heaviest task's longest batch
(by the activation estimate of Korthikanti et al. 2022, ``rows x length x (34 + 5 x heads x length /
hidden)``: MRC or WoS at 510 tokens, not RE's wider but shorter batches). The joint run first takes
a one-row step of every task (so every head has gradients and AdamW state, as in joint training),
then that heaviest batch; the single run takes the same two steps of the heaviest task alone. Both
thus peak on the same batch, and the ratio is what the other seven heads, their data and their
optimizer state add.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl.batching.order import longest_batch
from mtl.config import config_from_dict


def batch_tokens(lengths: np.ndarray, indices: list[int]) -> int:
    """Tokens of a dynamically padded batch: rows x its longest row."""
    return len(indices) * int(np.asarray(lengths)[indices].max())


def activation_estimate(lengths: np.ndarray, indices: list[int], hidden: int, heads: int) -> float:
    """Relative activation memory of a batch: rows x length x (34 + 5 x heads x length / hidden)."""
    length = int(np.asarray(lengths)[indices].max())
    return len(indices) * length * (34 + 5 * heads * length / hidden)


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    Linux: VmHWM of /proc/self/status. Not ru_maxrss: Linux carries it over from the parent across
    fork + exec, so a child of a large bench process would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, bytes on macOS
    return int(peak if sys.platform == "darwin" else peak * 1024)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the spec's batches in this process; returns peak RSS before and after training."""
    from mtl.batching.collate import batch_for
    from mtl.bench.steps import BenchSession, FixedStream, run_engine
    from mtl.training.loop import train_loop
    from mtl.training.session import build_session

    torch.set_num_threads(spec["threads"])
    cfg = config_from_dict(spec["config"])
    session = BenchSession.wrap(
        build_session(cfg, spec["output_dir"], only_tasks=spec["tasks"], progress=False)
    )
    batches = []
    for task, indices in spec["batches"]:
        td = session.data[task]
        batches.append({"task": task, **batch_for(td.task, td.train, indices, session.device)})
    before = peak_rss_bytes()
    run_engine(session, train_loop, len(batches), lambda s: FixedStream(batches))
    return {"peak_rss_before_training": before, "peak_rss": peak_rss_bytes()}


def run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter and return what it reports."""
    with tempfile.TemporaryDirectory(prefix="klue-bench-mem-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps({**spec, "output_dir": str(Path(tmp) / "run")}), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "mtl.bench.memory", str(spec_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"bench memory child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_ratio(
    config: dict[str, Any],
    lengths: dict[str, np.ndarray],
    batch_sizes: dict[str, int],
    threads: int,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Peak RSS of joint training (all tasks) vs the heaviest task alone, each in a subprocess."""
    arch = config["encoder"]["architecture"]
    longest = {t: longest_batch(lengths[t], batch_sizes[t]) for t in lengths}
    cost = {
        t: activation_estimate(lengths[t], longest[t], arch["hidden_size"], arch["num_attention_heads"])
        for t in lengths
    }
    heaviest = max(lengths, key=lambda t: cost[t])
    one_row = {t: [int(np.argmin(lengths[t]))] for t in lengths}
    heavy = [heaviest, longest[heaviest]]
    joint = run_child(
        {
            "config": config,
            "tasks": list(lengths),
            "batches": [[t, one_row[t]] for t in lengths] + [heavy],
            "threads": threads,
        },
        timeout,
    )
    single = run_child(
        {
            "config": config,
            "tasks": [heaviest],
            "batches": [[heaviest, one_row[heaviest]], heavy],
            "threads": threads,
        },
        timeout,
    )
    return {
        "joint_peak_rss_bytes": joint["peak_rss"],
        "single_peak_rss_bytes": single["peak_rss"],
        "single_task": heaviest,
        "peak_batch": [len(longest[heaviest]), int(np.asarray(lengths[heaviest])[longest[heaviest]].max())],
        "activation_estimate": {t: round(c) for t, c in cost.items()},
        "joint_rss_before_training_bytes": joint["peak_rss_before_training"],
        "single_rss_before_training_bytes": single["peak_rss_before_training"],
        "ratio": round(joint["peak_rss"] / single["peak_rss"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m mtl.bench.memory SPEC.json`` prints one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(json.dumps(child(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
