"""HTTP serving figures (``klue-mtl serve``): shared encoder pass, micro-batching, memory, a load run.

* **analyze vs separate**: examples/s of ``KlueMultiTask.analyze`` (YNAT + NER + DP, one encoder
  pass per batch) vs ``predict`` of the three tasks one after the other, on the same sentences.
* **micro-batching**: requests/s of a ``klue-mtl serve`` process (a child process on a loopback port)
  answering single-headline YNAT requests 16 at a time vs the same requests one at a time.
* **memory**: peak RSS of that server process (after every task answered and the load run) vs one
  process holding the eight exported single-task folders (:mod:`mtl.bench.inference`).
* **load run**: :func:`load_run`, a bounded mix of good and bad requests over every task.

``python -m mtl.bench.serving [--model-size tiny|base] [--output DIR] [--load-requests N]`` runs this
section alone; ``klue-mtl bench`` runs it as part of the whole bench. Each phase prints a line on
stderr, and every wait is bounded: a server that does not get ready, or a phase that does not finish
in its time, is a ``TimeoutError`` saying which phase and how far it got (with the server's output).
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
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


Say = Callable[[str], None]


def _quiet(message: str) -> None:
    """The default ``say``: no progress lines (the tests' load run)."""


def drive(
    url: str,
    items: Sequence[Any],
    concurrency: int,
    call: Callable[[Any, Any], Awaitable[None]],
    *,
    deadline_s: float,
    what: str,
) -> float:
    """``await call(client, item)`` for every item, ``concurrency`` at a time, with one
    ``httpx.AsyncClient`` on ``url`` (120 s per request); returns the seconds it took.

    Raises:
        TimeoutError: not every item was answered within ``deadline_s`` (names ``what`` and how far it got).
    """
    import httpx

    done = 0

    async def run() -> float:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def worker() -> None:
                nonlocal done
                while not queue.empty():
                    await call(client, queue.get_nowait())
                    done += 1

            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), deadline_s)
            return time.perf_counter() - t0

    try:
        return asyncio.run(run())
    except TimeoutError:
        raise TimeoutError(
            f"{what}: only {done} of {len(items)} requests answered in {deadline_s:.0f} s "
            f"({concurrency} at a time); the server is too slow or stuck"
        ) from None


def load_run(
    url: str,
    *,
    requests: int = 2000,
    concurrency: int = 16,
    seed: int = 0,
    pid: int | None = None,
    deadline_s: float = 1800.0,
    say: Say = _quiet,
) -> dict[str, Any]:
    """A bounded load run against a server at ``url`` (loopback): mixed tasks, one request in 8 bad.

    Good requests are each task's example input from ``GET /v1/tasks`` and ``/v1/analyze`` on the NER
    example; bad ones are an unknown task, a malformed item, too many inputs, a truncated JSON body
    and an empty analyze text. Reports failed good requests (anything but 200), bad requests not
    answered 4xx, p50/p99 latency of the good ones, requests/s, and the server's RSS (``pid``;
    default this process) at the end of the first and of the second half of the run.

    Raises:
        TimeoutError: the run took longer than ``deadline_s`` (each request also times out at 120 s).
    """
    import httpx

    catalog = httpx.get(f"{url}/v1/tasks", timeout=30).raise_for_status().json()
    ner = next((t for t in catalog["tasks"] if t["name"] == "ner"), None)
    catalog["analyze_text"] = ner["example"] if ner else "한 문장을 분석한다."
    plan = _requests(catalog, requests, seed)
    latencies: list[float] = []
    failures: list[str] = []
    counts = {"failed_good": 0, "bad_not_4xx": 0, "statuses": {}}
    rss = {"first": 0, "second": 0}
    done = 0

    async def one(client: httpx.AsyncClient, request: tuple[str, Any, bool]) -> None:
        nonlocal done
        path, body, good = request
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
        if done % max(requests // 4, 1) == 0:
            say(f"load run: {done}/{requests} requests answered")

    seconds = drive(url, plan, concurrency, one, deadline_s=deadline_s, what="load run")
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
def analyze_vs_separate(api: Any, texts: list[str], batch_size: int, repeats: int = 3) -> dict[str, Any]:
    """Examples/s of ``analyze`` (one encoder pass) vs YNAT, NER and DP predicted one after the other.

    The two are timed in turn ``repeats`` times and each keeps its fastest run: on a shared machine
    a burst of other work then slows both, not whichever happened to run during it.
    """
    tasks = [t for t in ("ynat", "ner", "dp") if t in api.tasks]
    api.analyze(texts[:batch_size], tasks=tasks, batch_size=batch_size)  # untimed warm-up
    for t in tasks:
        api.predict(t, texts[:batch_size], batch_size=batch_size)
    shared_s, separate_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        shared = api.analyze(texts, tasks=tasks, batch_size=batch_size)
        t1 = time.perf_counter()
        separate = {t: api.predict(t, texts, batch_size=batch_size) for t in tasks}
        t2 = time.perf_counter()
        shared_s.append(t1 - t0)
        separate_s.append(t2 - t1)
    same = sum(all(s[t] == separate[t][i] for t in tasks) for i, s in enumerate(shared))
    return {
        "tasks": tasks,
        "examples": len(texts),
        "batch_size": batch_size,
        "repeats": repeats,
        "analyze_examples_per_second": round(len(texts) / min(shared_s), 2),
        "separate_examples_per_second": round(len(texts) / min(separate_s), 2),
        "speedup": round(min(separate_s) / min(shared_s), 3),
        "identical_results": f"{same}/{len(texts)}",
    }


def batched_vs_sequential(
    url: str, titles: list[str], concurrency: int = 16, *, deadline_s: float = 900.0
) -> dict[str, Any]:
    """Requests/s of single-headline YNAT requests, ``concurrency`` at a time vs one at a time."""

    async def one(client: Any, title: str) -> None:
        r = await client.post("/v1/predict/ynat", json={"inputs": [title]})
        r.raise_for_status()

    what = "YNAT requests {} at a time"
    drive(url, titles[:concurrency], concurrency, one, deadline_s=deadline_s, what="warm-up")
    one_at_a_time = drive(url, titles, 1, one, deadline_s=deadline_s, what=what.format(1))
    many = drive(url, titles, concurrency, one, deadline_s=deadline_s, what=what.format(concurrency))
    return {
        "requests": len(titles),
        "concurrency": concurrency,
        "sequential_requests_per_second": round(len(titles) / one_at_a_time, 2),
        "batched_requests_per_second": round(len(titles) / many, 2),
        "speedup": round(one_at_a_time / many, 3),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``klue-mtl serve`` in a child process on a free loopback port, until the block ends.

    Its output goes to an unnamed temporary file, never a pipe: nobody reads a pipe while the bench
    runs, and a server blocked writing to a full one answers nothing. The file's tail is in every
    error raised here.
    """

    def __init__(self, checkpoint: Path, threads: int, *, ready_timeout_s: float = 300.0, **options: Any):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self.argv = [sys.executable, "-m", "mtl", "serve", "--checkpoint", str(checkpoint)]
        self.argv += ["--port", str(self.port), *flags]
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
        self.ready_timeout_s = ready_timeout_s

    def output_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters the server wrote (stdout and stderr)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-chars:]

    def __enter__(self) -> ServerProcess:
        import httpx

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"klue-mtl serve exited ({self.proc.returncode}):\n{self.output_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise TimeoutError(
            f"klue-mtl serve was not ready within {self.ready_timeout_s:.0f} s:\n{self.output_tail()}"
        )

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()  # uvicorn: finish the open requests, run the shutdown, exit
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


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
    separate_memory: Mapping[str, Any] | None = None,
    load_requests: int | None = None,
    say: Say = _quiet,
) -> dict[str, Any]:
    """Every HTTP serving figure (see the module doc) for ``checkpoint`` (default: a random checkpoint
    of ``model_size``).

    ``separate_memory``: the eight-exports figures :func:`mtl.bench.inference.serving_memory` already
    measured for this checkpoint (``klue-mtl bench`` passes them); measured here when None.
    ``say`` gets one line per phase. Every phase is bounded: a server that does not start or stops
    answering is a ``TimeoutError`` naming the phase, not a hang.
    """
    import torch

    from mtl.bench.inference import serving_memory
    from mtl.bench.plan import find_data
    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="klue-bench-http-") as tmp:
        folder = Path(tmp)
        if checkpoint is None:
            say(f"HTTP serving: a random {model_size} checkpoint with the eight heads")
            checkpoint, _ = bench_checkpoint(model_size, data_dir, folder)
        data = find_data(data_dir)
        api = KlueMultiTask.from_pretrained(checkpoint)
        n = 16 if quick else (64 if model_size == "base" else 128)
        ner_texts = [r["text"] for r in api.task("ner").read(data.data_dir / data.dev["ner"], labeled=False)]
        titles = [r["title"] for r in api.task("ynat").read(data.data_dir / data.dev["ynat"], labeled=False)]
        texts = (ner_texts * (n // max(len(ner_texts), 1) + 1))[:n]
        titles = (titles * (n // max(len(titles), 1) + 1))[:n]
        out: dict[str, Any] = {"model_size": model_size, "data": data.source, "threads": threads}
        say(f"HTTP serving: analyze (YNAT+NER+DP, one pass) vs the three predicted apart, {n} sentences")
        out["analyze_vs_separate"] = analyze_vs_separate(api, texts, batch_size=16)
        del api
        say("HTTP serving: starting klue-mtl serve on a loopback port")
        with ServerProcess(Path(checkpoint), threads, max_batch=32, max_wait_ms=5) as server:
            say(f"HTTP serving: {n} single-headline YNAT requests one at a time, then 16 at a time")
            out["micro_batching"] = batched_vs_sequential(server.url, titles)
            requests = load_requests or (100 if quick else 2000)
            say(f"HTTP serving: load run of {requests} mixed requests, 16 concurrent")
            out["load"] = load_run(
                server.url, requests=requests, concurrency=16, pid=server.proc.pid, say=say
            )
            server_peak = rss_bytes(server.proc.pid, "VmHWM")
            say("HTTP serving: stopping the server")
        if separate_memory is None:
            say("HTTP serving: exporting the eight tasks; peak RSS of one process holding the eight exports")
            api = KlueMultiTask.from_pretrained(checkpoint)
            exports = {name: folder / "exports" / name for name in api.tasks}
            for name, export in exports.items():
                export_task(api, name, export)
            del api
            dev_files = {t: str(data.data_dir / f) for t, f in data.dev.items()}
            separate_memory = serving_memory(Path(checkpoint), exports, dev_files, threads)
        imports = separate_memory["joint_rss_after_imports_bytes"]
        separate_peak = separate_memory["separate_peak_rss_bytes"]
        separate_imports = separate_memory["separate_rss_after_imports_bytes"]
        out["memory"] = {
            "server_peak_rss_bytes": server_peak,
            "separate_peak_rss_bytes": separate_peak,
            "imports_rss_bytes": imports,
            "separate_imports_rss_bytes": separate_imports,
            "ratio": round(server_peak / separate_peak, 4),
            # the server also imports FastAPI and uvicorn: counted against it here
            "ratio_above_imports": round((server_peak - imports) / (separate_peak - separate_imports), 4),
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
    parser.add_argument(
        "--load-requests", type=int, help="requests in the load run (default 2000, quick 100)"
    )
    args = parser.parse_args(argv)
    from mtl.bench import Progress

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable folder fails before minutes of work
    result = serving_bench(
        args.model_size,
        args.data_dir,
        quick=args.quick,
        checkpoint=args.checkpoint,
        load_requests=args.load_requests,
        say=Progress(),
    )
    (out / "serving.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "serving.md").write_text(render_markdown(result), encoding="utf-8")
    print(render_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
