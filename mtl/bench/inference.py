"""Serving figures: the Python API beside ``transformers.pipeline``, per-task speed, serving memory.

* **API vs pipeline** (the sentence-level tasks): examples/s of ``KlueMultiTask.predict`` on raw
  inputs vs ``pipeline("text-classification")`` on the same task exported with ``klue-mtl export``,
  both with the same batch size and every label's probability returned (``top_k=None``). The API
  sorts inputs by length and pads each batch to its own longest member; the pipeline pads each batch
  of inputs in the order given.
* **Per task**: examples/s of ``KlueMultiTask.predict_records`` (the path ``predict`` takes after
  checking the raw inputs: featurize, batch, run, decode) on the first dev records of every task.
* **Memory**: peak RSS of one process serving all eight tasks from the joint checkpoint vs one process
  holding the eight exported single-task folders side by side (each loaded with its transformers
  class; the three heads without one as encoder + head tensors), each answering one input per task.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl.batching.prepare import Split

#: inputs timed per task in the API vs pipeline comparison, and their batch size
COMPARE_EXAMPLES = {"quick": 8, "tiny": 512, "base": 256}
COMPARE_BATCH_SIZE = {"quick": 4, "tiny": 32, "base": 32}
#: head kinds whose exports the text-classification pipeline serves with every label's probability
COMPARE_HEAD_KINDS = ("classification",)


def raw_inputs(task: Any, records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The raw API inputs of sentence-level records: a text, or a (first, second) pair."""
    fields = task.text_fields
    return [r[fields[0]] if len(fields) == 1 else tuple(r[f] for f in fields) for r in records]


def api_vs_pipeline(
    api: Any, task: str, records: Sequence[Mapping[str, Any]], batch_size: int, folder: Path, device: Any
) -> dict[str, Any]:
    """Examples/s of the API and of the text-classification pipeline on the same inputs."""
    from transformers import AutoModelForSequenceClassification, pipeline

    from mtl.serving.export import export_task

    t = api.task(task)
    export_task(api, task, folder)
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    pipe = pipeline("text-classification", model=model, tokenizer=str(folder), device=device)
    inputs = raw_inputs(t, records)
    pipe_inputs = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in inputs]
    kwargs = {
        "top_k": None,
        "batch_size": batch_size,
        "truncation": True,
        "max_length": t.settings.max_length,
    }
    warm = min(len(inputs), batch_size)  # first-call costs (allocations, kernels) stay out of the figure
    api.predict(task, inputs[:warm], batch_size=batch_size)
    pipe(pipe_inputs[:warm], **kwargs)
    t0 = time.perf_counter()
    ours = api.predict(task, inputs, batch_size=batch_size)
    t1 = time.perf_counter()
    theirs = pipe(pipe_inputs, **kwargs)
    t2 = time.perf_counter()
    agree = sum(a["label"] == b[0]["label"] for a, b in zip(ours, theirs, strict=True))
    return {
        "examples": len(inputs),
        "batch_size": batch_size,
        "api_seconds": round(t1 - t0, 4),
        "pipeline_seconds": round(t2 - t1, 4),
        "api_examples_per_second": round(len(inputs) / (t1 - t0), 2),
        "pipeline_examples_per_second": round(len(inputs) / (t2 - t1), 2),
        "speedup": round((t2 - t1) / (t1 - t0), 3),
        "same_labels": f"{agree}/{len(inputs)}",
    }


def api_speed(api: Any, dev: Mapping[str, Split], tokens: int) -> dict[str, Any]:
    """Per task: examples/s of ``predict_records`` (featurize + batches + decode) on the first dev records."""
    from mtl.bench.scoring import first_records

    out = {}
    for name in api.tasks:
        split = first_records(dev[name], tokens)
        api.predict_records(name, split.records[:1])  # untimed warm-up
        t0 = time.perf_counter()
        api.predict_records(name, split.records)
        seconds = time.perf_counter() - t0
        out[name] = {
            "examples": len(split.records),
            "seconds": round(seconds, 4),
            "examples_per_second": round(len(split.records) / seconds, 2),
        }
    return out


def serving_memory(
    checkpoint: Path, exports: Mapping[str, Path], dev_files: Mapping[str, str], threads: int
) -> dict[str, Any]:
    """Peak RSS of serving every task from the joint checkpoint vs from the exported folders."""
    spec = {"checkpoint": str(checkpoint), "dev": dict(dev_files), "threads": threads}
    joint = _run_child({**spec, "mode": "joint"})
    separate = _run_child({**spec, "mode": "separate", "exports": {t: str(p) for t, p in exports.items()}})
    return {
        "joint_peak_rss_bytes": joint["peak_rss"],
        "separate_peak_rss_bytes": separate["peak_rss"],
        "joint_rss_after_imports_bytes": joint["rss_after_imports"],
        "separate_rss_after_imports_bytes": separate["rss_after_imports"],
        "models_loaded": {"joint": 1, "separate": len(exports)},
        "ratio": round(joint["peak_rss"] / separate["peak_rss"], 4),
        "ratio_above_imports": round(
            (joint["peak_rss"] - joint["rss_after_imports"])
            / (separate["peak_rss"] - separate["rss_after_imports"]),
            4,
        ),
    }


def _run_child(spec: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="klue-bench-serve-") as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "mtl.bench.inference", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"bench serving child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the models of ``spec["mode"]`` and answer one input per task; report RSS figures."""
    import torch
    import transformers
    from safetensors.torch import load_file

    from mtl.bench.memory import peak_rss_bytes
    from mtl.serving.api import KlueMultiTask

    torch.set_num_threads(spec["threads"])
    after_imports = peak_rss_bytes()
    if spec["mode"] == "joint":
        api = KlueMultiTask.from_pretrained(spec["checkpoint"])
        for name in api.tasks:
            api.predict_records(name, api.task(name).read(spec["dev"][name], labeled=False)[:1])
    else:
        models = []
        for name, folder in spec["exports"].items():
            config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
            cls_name = {
                "RobertaForSequenceClassification": "AutoModelForSequenceClassification",
                "RobertaForTokenClassification": "AutoModelForTokenClassification",
                "RobertaForQuestionAnswering": "AutoModelForQuestionAnswering",
            }.get(config["architectures"][0], "AutoModel")
            extra = {"add_pooling_layer": False} if cls_name == "AutoModel" else {}
            model = getattr(transformers, cls_name).from_pretrained(folder, **extra).eval()
            head = load_file(str(Path(folder) / "klue_head.safetensors")) if cls_name == "AutoModel" else None
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
            models.append((name, model, head, tokenizer))
        with torch.inference_mode():
            for _, model, _, tokenizer in models:
                model(**tokenizer(["서울 중앙에 있는 박물관을 찾아주세요"], return_tensors="pt"))
    return {"rss_after_imports": after_imports, "peak_rss": peak_rss_bytes()}


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m mtl.bench.inference SPEC.json`` prints one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(child(json.loads(Path(args[0]).read_text(encoding="utf-8")))))
    return 0


def serving_figures(
    session: Any, dev: Mapping[str, Split], dev_files: Mapping[str, str], plan: Any, tmp: Path
) -> dict[str, Any]:
    """Every serving figure of the bench for the session's model (saved as a checkpoint first)."""
    import torch

    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task
    from mtl.training.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(
        tmp / "serving-checkpoint",
        session.model,
        session.tokenizer,
        session.task_resources(),
        session.cfg.to_dict(),
    )
    api = KlueMultiTask.from_pretrained(checkpoint, device=session.device)
    exports = {}
    for name in api.tasks:
        exports[name] = tmp / "exports" / name
        export_task(api, name, exports[name])
    size = "quick" if plan.quick else plan.model_size
    comparisons = {}
    for name in api.tasks:
        if api.model.head_specs[name]["kind"] in COMPARE_HEAD_KINDS:
            records = dev[name].records[: COMPARE_EXAMPLES[size]]
            comparisons[name] = api_vs_pipeline(
                api, name, records, COMPARE_BATCH_SIZE[size], tmp / "pipeline" / name, session.device
            )
    speed = api_speed(api, dev, plan.predict_tokens)
    memory = serving_memory(checkpoint, exports, dev_files, torch.get_num_threads())
    return {
        "api_vs_pipeline": comparisons,
        # the figure with a target: the slowest of the compared tasks
        "api_vs_pipeline_min": min((c["speedup"] for c in comparisons.values()), default=float("nan")),
        "api_speed": speed,
        "memory": memory,
    }


if __name__ == "__main__":
    sys.exit(main())
