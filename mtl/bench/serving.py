"""HTTP serving figures (``klue-mtl serve``): shared encoder pass, micro-batching, memory, a load run.

* **analyze vs separate**: examples/s of ``KlueMultiTask.analyze`` (YNAT + NER + DP, one encoder
  pass per batch) vs ``predict`` of the three tasks one after the other, on the same sentences.
* **micro-batching**: requests/s of a ``klue-mtl serve`` process (a child process on a loopback port)
  answering single-headline YNAT requests 16 at a time vs the same requests one at a time.
* **memory**: peak RSS of that server process (after every task answered and the load run) vs one
  process holding the eight exported single-task folders (:mod:`mtl.bench.inference`).
* **load run**: :func:`load_run`, a bounded mix of good and bad requests over every task.

``python -m mtl.bench.serving [--model-size tiny|base] [--output DIR]`` runs this section alone;
``klue-mtl bench`` runs it as part of the whole bench.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["load_run", "serving_bench"]


def rss_bytes(pid: int | None = None, field: str = "VmRSS") -> int:
    """Resident set size (``VmRSS``) or its peak (``VmHWM``) of a process, from /proc; 0 elsewhere."""
    try:
        for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _requests(catalog: dict[str, Any], count: int, seed: int) -> list[tuple[str, Any, bool]]:
    """(path, JSON body or raw bytes, good?) of a mixed run: every task, analyze, ~1 in 8 bad."""
    rng = random.Random(seed)
    tasks = catalog["tasks"]
    limit = catalog["limits"]["max_inputs"]
    good_kinds = [("task", t) for t in tasks] + ([("analyze", None)] if catalog["analyze"] else [])
    bad_makers = [
        lambda: ("/v1/predict/no-such-task", {"inputs": ["x"]}),
        lambda: (f"/v1/predict/{rng.choice(tasks)['name']}", {"inputs": [None]}),
        lambda: (f"/v1/predict/{tasks[0]['name']}", {"inputs": [tasks[0]["example"]] * (limit + 1)}),
        lambda: (f"/v1/predict/{tasks[0]['name']}", b'{"inputs": ['),
        lambda: ("/v1/analyze", {"text": ""}),
    ]
    out: list[tuple[str, Any, bool]] = []
    for i in range(count):
        if i % 8 == 7:
            path, body = rng.choice(bad_makers)()
            out.append((path, body, False))
            continue
        kind, task = rng.choice(good_kinds)
        if kind == "analyze":
            out.append(("/v1/analyze", {"text": catalog["analyze_text"]}, True))
        else:
            out.append((f"/v1/predict/{task['name']}", {"inputs": [task["example"]]}, True))
    return out


def load_run(
    url: str, *, requests: int = 2000, concurrency: int = 16, seed: int = 0, pid: int | None = None
) -> dict[str, Any]:
    """A bounded load run against a server at ``url`` (loopback): mixed tasks, one request in 8 bad.

    Good requests are each task's example input from ``GET /v1/tasks`` and ``/v1/analyze`` on the NER
    example; bad ones are an unknown task, a malformed item, too many inputs, a truncated JSON body
    and an empty analyze text. Reports failed good requests (anything but 200), bad requests not
    answered 4xx, p50/p99 latency of the good ones, requests/s, and the server's RSS (``pid``;
    default this process) at the end of the first and of the second half of the run.
    """
    import httpx

    catalog = httpx.get(f"{url}/v1/tasks", timeout=30).json()
    ner = next((t for t in catalog["tasks"] if t["name"] == "ner"), None)
    catalog["analyze_text"] = ner["example"] if ner else "한 문장을 분석한다."
    plan = _requests(catalog, requests, seed)
    latencies: list[float] = []
    failures: list[str] = []
    counts = {"failed_good": 0, "bad_not_4xx": 0, "statuses": {}}
    rss = {"first": 0, "second": 0}
    done = 0

    async def one(client: Any, path: str, body: Any, good: bool) -> None:
        nonlocal done
        t0 = time.perf_counter()
        try:
            if isinstance(body, bytes):
                r = await client.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = await client.post(path, json=body)
            status = r.status_code
        except httpx.HTTPError as err:
            status, r = 0, None
            failures.append(f"{path}: {type(err).__name__}: {err}")
        seconds = time.perf_counter() - t0
        counts["statuses"][str(status)] = counts["statuses"].get(str(status), 0) + 1
        if good:
            latencies.append(seconds)
            if status != 200:
                counts["failed_good"] += 1
                failures.append(f"{path}: {status} {r.text[:200] if r is not None else ''}")
        elif not 400 <= status < 500:
            counts["bad_not_4xx"] += 1
            failures.append(f"bad {path}: {status}")
        done += 1
        half = "first" if done <= requests // 2 else "second"
        if done % 10 == 0 or done in (requests // 2, requests):
            rss[half] = max(rss[half], rss_bytes(pid))

    async def run() -> float:
        queue: asyncio.Queue[tuple[str, Any, bool]] = asyncio.Queue()
        for item in plan:
            queue.put_nowait(item)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def worker() -> None:
                while not queue.empty():
                    await one(client, *queue.get_nowait())

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t0

    seconds = asyncio.run(run())
    good = sum(1 for _, _, g in plan if g)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "good": good,
        "bad": requests - good,
        "failed_good": counts["failed_good"],
        "bad_not_4xx": counts["bad_not_4xx"],
        "statuses": counts["statuses"],
        "failures": failures[:10],
        "seconds": round(seconds, 3),
        "requests_per_second": round(requests / seconds, 2),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "rss_first_half_bytes": rss["first"],
        "rss_second_half_bytes": rss["second"],
        "rss_growth": round(rss["second"] / rss["first"] - 1, 4) if rss["first"] else None,
    }


# -- the three targets -------------------------------------------------------------------------------
def analyze_vs_separate(api: Any, texts: list[str], batch_size: int) -> dict[str, Any]:
    """Examples/s of ``analyze`` (one encoder pass) vs YNAT, NER and DP predicted one after the other."""
    tasks = [t for t in ("ynat", "ner", "dp") if t in api.tasks]
    api.analyze(texts[:batch_size], tasks=tasks, batch_size=batch_size)  # untimed warm-up
    for t in tasks:
        api.predict(t, texts[:batch_size], batch_size=batch_size)
    t0 = time.perf_counter()
    shared = api.analyze(texts, tasks=tasks, batch_size=batch_size)
    t1 = time.perf_counter()
    separate = {t: api.predict(t, texts, batch_size=batch_size) for t in tasks}
    t2 = time.perf_counter()
    same = sum(all(s[t] == separate[t][i] for t in tasks) for i, s in enumerate(shared))
    return {
        "tasks": tasks,
        "examples": len(texts),
        "batch_size": batch_size,
        "analyze_examples_per_second": round(len(texts) / (t1 - t0), 2),
        "separate_examples_per_second": round(len(texts) / (t2 - t1), 2),
        "speedup": round((t2 - t1) / (t1 - t0), 3),
        "identical_results": f"{same}/{len(texts)}",
    }


def batched_vs_sequential(url: str, titles: list[str], concurrency: int = 16) -> dict[str, Any]:
    """Requests/s of single-headline YNAT requests, ``concurrency`` at a time vs one at a time."""
    import httpx

    async def run(items: list[str], width: int) -> float:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for t in items:
            queue.put_nowait(t)
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:

            async def worker() -> None:
                while not queue.empty():
                    r = await client.post("/v1/predict/ynat", json={"inputs": [queue.get_nowait()]})
                    r.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(width)))
            return time.perf_counter() - t0

    asyncio.run(run(titles[:concurrency], concurrency))  # warm-up
    one = asyncio.run(run(titles, 1))
    many = asyncio.run(run(titles, concurrency))
    return {
        "requests": len(titles),
        "concurrency": concurrency,
        "sequential_requests_per_second": round(len(titles) / one, 2),
        "batched_requests_per_second": round(len(titles) / many, 2),
        "speedup": round(one / many, 3),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``klue-mtl serve`` in a child process on a free loopback port, until the block ends."""

    def __init__(self, checkpoint: Path, threads: int, **options: Any) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self.argv = [sys.executable, "-m", "mtl", "serve", "--checkpoint", str(checkpoint)]
        self.argv += ["--port", str(self.port), *flags]
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}

    def __enter__(self) -> ServerProcess:
        import httpx

        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"klue-mtl serve exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("klue-mtl serve did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_checkpoint(model_size: str, data_dir: str | Path | None, folder: Path) -> tuple[Path, Any]:
    """A randomly initialised joint checkpoint of ``model_size`` with all eight heads (speed only), and
    the bench plan (its data files)."""
    from mtl.bench.plan import make_plan, run_config
    from mtl.training.checkpoint import save_checkpoint
    from mtl.training.session import build_session

    plan = dataclasses.replace(make_plan(model_size, data_dir, quick=False), max_records=16)
    cfg = run_config(plan, folder / "cache", folder / "runs")
    session = build_session(cfg, folder / "runs" / "session", progress=False)
    path = save_checkpoint(
        folder / "checkpoint", session.model, session.tokenizer, session.task_resources(), cfg.to_dict()
    )
    return path, plan


def serving_bench(
    model_size: str = "tiny",
    data_dir: str | Path | None = None,
    *,
    quick: bool = False,
    checkpoint: str | Path | None = None,
    load_requests: int | None = None,
) -> dict[str, Any]:
    """Every HTTP serving figure (see the module doc) for a random checkpoint of ``model_size``."""
    import torch

    from mtl.bench.inference import _run_child
    from mtl.bench.plan import find_data
    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="klue-bench-http-") as tmp:
        folder = Path(tmp)
        if checkpoint is None:
            checkpoint, _ = bench_checkpoint(model_size, data_dir, folder)
        data = find_data(data_dir)
        api = KlueMultiTask.from_pretrained(checkpoint)
        n = 8 if quick else (64 if model_size == "base" else 256)
        ner_texts = [r["text"] for r in api.task("ner").read(data.data_dir / data.dev["ner"], labeled=False)]
        titles = [r["title"] for r in api.task("ynat").read(data.data_dir / data.dev["ynat"], labeled=False)]
        texts = (ner_texts * (n // max(len(ner_texts), 1) + 1))[:n]
        titles = (titles * (4 * n // max(len(titles), 1) + 1))[: (32 if quick else 4 * n)]
        out: dict[str, Any] = {"model_size": model_size, "data": data.source, "threads": threads}
        out["analyze_vs_separate"] = analyze_vs_separate(api, texts, batch_size=16)
        del api
        with ServerProcess(Path(checkpoint), threads, max_batch=32, max_wait_ms=5) as server:
            out["micro_batching"] = batched_vs_sequential(server.url, titles)
            requests = load_requests or (200 if quick else 2000)
            out["load"] = load_run(server.url, requests=requests, concurrency=16, pid=server.proc.pid)
            server_peak = rss_bytes(server.proc.pid, "VmHWM")
        exports = {}
        api = KlueMultiTask.from_pretrained(checkpoint)
        for name in api.tasks:
            exports[name] = folder / "exports" / name
            export_task(api, name, exports[name])
        dev_files = {t: str(data.data_dir / f) for t, f in data.dev.items()}
        del api
        spec = {"checkpoint": str(checkpoint), "dev": dev_files, "threads": threads}
        joint = _run_child({**spec, "mode": "joint"})
        separate = _run_child(
            {**spec, "mode": "separate", "exports": {t: str(p) for t, p in exports.items()}}
        )
        out["memory"] = {
            "server_peak_rss_bytes": server_peak,
            "separate_peak_rss_bytes": separate["peak_rss"],
            "imports_rss_bytes": joint["rss_after_imports"],
            "separate_imports_rss_bytes": separate["rss_after_imports"],
            "ratio": round(server_peak / separate["peak_rss"], 4),
            # the server also imports FastAPI and uvicorn: counted against it here
            "ratio_above_imports": round(
                (server_peak - joint["rss_after_imports"])
                / (separate["peak_rss"] - separate["rss_after_imports"]),
                4,
            ),
        }
    out["targets"] = {
        "analyze_speedup_min_2.4": out["analyze_vs_separate"]["speedup"] >= 2.4,
        "micro_batching_speedup_min_3": out["micro_batching"]["speedup"] >= 3.0,
        "memory_above_imports_max_0.25": out["memory"]["ratio_above_imports"] <= 0.25,
        "load_no_failed_good": out["load"]["failed_good"] == 0 and out["load"]["bad_not_4xx"] == 0,
        "load_rss_growth_max_10pct": (out["load"]["rss_growth"] or 0) <= 0.10,
    }
    return out


def render_markdown(r: dict[str, Any]) -> str:
    """The serving section of bench.md."""
    a, b, m, load = r["analyze_vs_separate"], r["micro_batching"], r["memory"], r["load"]
    gib = 1024**3
    return "\n".join(
        [
            f"## HTTP serving ({r['model_size']} encoder, {r['data']} data, {r['threads']} threads)",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| analyze (YNAT+NER+DP, one pass) vs separate | {a['analyze_examples_per_second']} vs "
            f"{a['separate_examples_per_second']} ex/s = **{a['speedup']}x** | >= 2.4x |",
            f"| 16 concurrent YNAT requests vs one at a time | {b['batched_requests_per_second']} vs "
            f"{b['sequential_requests_per_second']} req/s = **{b['speedup']}x** | >= 3x |",
            f"| server peak RSS vs eight exports | {m['server_peak_rss_bytes'] / gib:.2f} vs "
            f"{m['separate_peak_rss_bytes'] / gib:.2f} GiB = {m['ratio']}; above imports "
            f"**{m['ratio_above_imports']}** | <= 0.25 |",
            f"| load: {load['requests']} requests, {load['concurrency']} concurrent | "
            f"{load['failed_good']} failed good, {load['bad_not_4xx']} bad not 4xx, p50 {load['p50_ms']} ms, "
            f"p99 {load['p99_ms']} ms, {load['requests_per_second']} req/s | 0 failed |",
            f"| load RSS first vs second half | {load['rss_first_half_bytes'] / 2**20:.0f} vs "
            f"{load['rss_second_half_bytes'] / 2**20:.0f} MiB ({load['rss_growth']:+.1%}) | <= +10 % |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m mtl.bench.serving``: this section of the bench alone."""
    parser = argparse.ArgumentParser(prog="python -m mtl.bench.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--model-size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--data-dir", help="KLUE data folder (default: $KLUE_DATA_DIR, else the samples)")
    parser.add_argument("--checkpoint", help="serve this checkpoint instead of a random one")
    parser.add_argument(
        "--output", default="runs/bench-serving", help="folder for serving.json and serving.md"
    )
    parser.add_argument("--quick", action="store_true", help="a few requests (what the tests run)")
    args = parser.parse_args(argv)
    result = serving_bench(args.model_size, args.data_dir, quick=args.quick, checkpoint=args.checkpoint)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "serving.md").write_text(render_markdown(result), encoding="utf-8")
    print(render_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
