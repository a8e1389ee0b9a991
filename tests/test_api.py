"""The Python API on raw inputs, its agreement with `klue-mtl predict`, and the transformers exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mtl.cli.main import main
from mtl.errors import KlueInputError
from mtl.samples import sample_path

TASK_NAMES = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")  # KLUE order

ROOT = Path(__file__).parent.parent
DEMO = str(ROOT / "configs" / "demo.yaml")
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A joint checkpoint of all eight tasks trained briefly from the demo config."""
    out = tmp_path_factory.mktemp("api-joint")
    args = ["train", "--config", DEMO, "--output", str(out), *TINY, "train.max_steps=16"]
    assert main([*args, f"cache_dir={out / 'cache'}"]) == 0
    return out / "best"


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> Any:
    from mtl import KlueMultiTask

    return KlueMultiTask.from_pretrained(checkpoint)


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


# -- the README example ------------------------------------------------------------------------------
def test_the_readme_example_runs_for_all_eight_tasks(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = readme_example()
    calls = re.findall(r'm\.predict\("(\w+)"', code)
    assert calls == list(TASK_NAMES)
    # Keep every call's result: the example discards them.
    code = re.sub(r'^m\.predict\("(\w+)"', r'results["\1"] = m.predict("\1"', code, flags=re.M)
    code = code.replace('"runs/demo/best"', repr(str(checkpoint)))
    scope: dict[str, Any] = {"results": {}}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    r = scope["results"]
    assert set(scope["m"].tasks) == set(TASK_NAMES)
    assert r["ynat"][0]["label"] in r["ynat"][0]["probs"] and len(r["ynat"][0]["probs"]) == 7
    assert sum(r["nli"][0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(r["sts"][0]["score"], float)
    ner, text = r["ner"][0], scope["text"]
    assert len(ner["tags"]) == len(text)
    for e in ner["entities"]:
        assert text[e["start"] : e["end"]] == e["text"] and ner["tags"][e["start"]][2:] == e["type"]
    assert len(r["re"][0]["probs"]) == 30
    assert [len(d["heads"]) for d in r["dp"]] == [len(scope["parse"].split()), 4]
    assert all(len(d["deprels"]) == len(d["heads"]) for d in r["dp"])
    assert sum(h == 0 for h in r["dp"][0]["heads"]) == 1
    mrc = r["mrc"][0]
    assert (mrc["start"] is None) == (mrc["answer"] == "")
    assert r["wos"][0]["turn"] == 2 and isinstance(r["wos"][0]["state"], list)


# -- the API and `klue-mtl predict` agree ---------------------------------------------------------------
def inputs_of(task: str, record: dict[str, Any]) -> Any:
    """The raw input a user would pass for a reader record."""
    if task == "ynat":
        return record["title"]
    if task == "nli":
        return (record["premise"], record["hypothesis"])
    if task == "sts":
        return (record["sentence1"], record["sentence2"])
    if task == "ner":
        return record["text"]
    if task == "re":
        ent = {k: (record[k]["start"], record[k]["end"], record[k]["type"]) for k in ("subject", "object")}
        return {"sentence": record["sentence"], **ent}
    if task == "dp":
        return {"words": record["words"], "pos": record["pos"]}
    if task == "mrc":
        return {"question": record["question"], "context": record["context"]}
    raise AssertionError(task)


@pytest.mark.parametrize("task", TASK_NAMES)
def test_api_results_equal_the_predict_command(
    model: Any, checkpoint: Path, tmp_path: Path, task: str
) -> None:
    pred = tmp_path / "pred.jsonl"
    args = ["predict", "--checkpoint", str(checkpoint), "--task", task]
    assert main([*args, "--input", str(sample_path(task, "dev")), "--output", str(pred)]) == 0
    rows = [json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines()]
    records = model.task(task).read(sample_path(task, "dev"), labeled=False)
    assert model.predict_records(task, records) == rows
    if task == "wos":
        # One API call per user turn: the dialogue up to it; the result is the state after it.
        prefixes = [
            [t["text"] for t in r["dialogue"][: i + 1]]
            for r in records
            for i, t in enumerate(r["dialogue"])
            if t["role"] == "user"
        ]
        results = model.predict("wos", prefixes, batch_size=5)
        assert [(x["turn"], x["state"]) for x in results] == [(row["turn"], row["state"]) for row in rows]
        return
    results = model.predict(task, [inputs_of(task, r) for r in records], batch_size=7)
    assert len(results) == len(rows)
    for result, row in zip(results, rows, strict=True):
        if task in ("ynat", "nli", "re"):
            assert result["label"] == row["label"]
            assert max(result["probs"], key=result["probs"].get) == row["label"]
        if task == "re":
            assert list(result["probs"].values()) == pytest.approx(row["probs"], abs=1e-6)
        if task == "sts":
            assert result["score"] == pytest.approx(row["score"], abs=1e-5)
        if task == "ner":
            assert result["tags"] == row["tags"]
        if task == "dp":
            assert (result["heads"], result["deprels"]) == (row["heads"], row["deprels"])
        if task == "mrc":
            assert result["answer"] == row["answer"]


def test_dp_without_pos_and_from_a_plain_sentence(model: Any) -> None:
    words = ["저", "거실은", "무척", "넓었다."]
    a, b = model.predict("dp", [" ".join(words), words])
    assert a == b and a["words"] == words and sorted(a["heads"]).count(0) == 1


def test_mrc_offsets_cut_the_answer_from_the_context(model: Any) -> None:
    records = model.task("mrc").read(sample_path("mrc", "dev"), labeled=False)
    results = model.predict("mrc", [inputs_of("mrc", r) for r in records])
    for r, x in zip(records, results, strict=True):
        if x["answer"]:
            assert r["context"][x["start"] : x["end"]] == x["answer"]


def test_bf16_encoder_gives_the_fp32_predictions_and_keeps_the_weights(checkpoint: Path, model: Any) -> None:
    from mtl import KlueMultiTask

    m = KlueMultiTask.from_pretrained(checkpoint, dtype=torch.bfloat16)
    assert {p.dtype for p in m.model.parameters()} == {torch.float32}
    titles = [
        inputs_of("ynat", r) for r in model.task("ynat").read(sample_path("ynat", "dev"), labeled=False)
    ]
    low, full = m.predict("ynat", titles), model.predict("ynat", titles)
    for a, b in zip(low, full, strict=True):
        assert sum(a["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert a["probs"] == pytest.approx(b["probs"], abs=0.05)  # bf16 keeps ~3 significant digits


def test_auto_dtype_is_the_precision_the_run_recorded(checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    from mtl import KlueMultiTask
    from mtl.training.checkpoint import RUN_NAME

    copy = Path(shutil.copytree(checkpoint, tmp_path / "best"))
    run = json.loads((copy / RUN_NAME).read_text(encoding="utf-8"))
    assert KlueMultiTask.from_pretrained(copy, dtype="auto").dtype is None  # precision auto on a CPU
    run["config"]["train"]["precision"] = "bf16"
    (copy / RUN_NAME).write_text(json.dumps(run), encoding="utf-8")
    assert KlueMultiTask.from_pretrained(copy, dtype="auto").dtype is torch.bfloat16


@pytest.mark.parametrize(
    ("task", "inputs", "message"),
    [
        ("ynat", ["좋은 제목", 3], "ynat inputs, item 1: the item must be a string"),
        ("nli", [("a", "b"), ("only one",)], "nli inputs, item 1: expected a pair"),
        ("ner", ["", "x"], "ner inputs, item 0: the item is empty"),
        (
            "re",
            [{"sentence": "abc", "subject": (0, 5, "PER"), "object": (0, 1, "LOC")}],
            "item 0: 'subject' span 0..5",
        ),
        (
            "re",
            [{"sentence": "abc", "subject": (0, 1, "XXX"), "object": (2, 2, "LOC")}],
            "'subject' type 'XXX'",
        ),
        ("dp", [{"words": ["a", "b"], "pos": ["NNG"]}], "dp inputs, item 0: 'pos' must be a list of 2"),
        ("mrc", [{"question": "q"}], "mrc inputs, item 0: 'context' must be a string"),
        ("wos", [["hi"], []], "wos inputs, item 1: expected a non-empty list of turns"),
    ],
)
def test_a_malformed_item_is_an_input_error_naming_its_index(
    model: Any, task: str, inputs: list[Any], message: str
) -> None:
    with pytest.raises(KlueInputError, match=re.escape(message)):
        model.predict(task, inputs)


def test_unknown_task_and_non_list_inputs_are_input_errors(model: Any) -> None:
    with pytest.raises(KlueInputError, match="no head for task 'xyz'"):
        model.predict("xyz", ["a"])
    with pytest.raises(KlueInputError, match="pass a list of inputs"):
        model.predict("ynat", "a single string")
    assert model.predict("ynat", []) == []


# -- exports ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exports(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    for task in TASK_NAMES:
        args = ["export", "--checkpoint", str(checkpoint), "--task", task, "--output", str(out / task)]
        assert main(args) == 0
    return out


def sample_inputs(model: Any, task: str) -> list[Any]:
    return [inputs_of(task, r) for r in model.task(task).read(sample_path(task, "dev"), labeled=False)]


@pytest.mark.parametrize("task", ["ynat", "nli", "sts"])
def test_text_classification_pipeline_agrees_with_the_joint_model(
    model: Any, exports: Path, task: str
) -> None:
    from transformers import AutoModelForSequenceClassification, pipeline

    folder = exports / task
    loaded = AutoModelForSequenceClassification.from_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["architectures"] == [
        "RobertaForSequenceClassification"
    ]
    inputs = sample_inputs(model, task)
    ours = model.predict(task, inputs, batch_size=8)
    pipe = pipeline("text-classification", model=loaded, tokenizer=str(folder), device="cpu")
    pipe_inputs = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in inputs]
    theirs = pipe(pipe_inputs, top_k=None, batch_size=8)
    for a, b in zip(ours, theirs, strict=True):
        scores = {d["label"]: d["score"] for d in b}
        if task == "sts":
            assert loaded.config.problem_type == "regression" and loaded.config.num_labels == 1
            assert scores["score"] == pytest.approx(a["score"], abs=1e-5)
        else:
            assert b[0]["label"] == a["label"]
            assert scores == pytest.approx(a["probs"], abs=1e-5)


def test_token_classification_pipeline_finds_the_same_entities(model: Any, exports: Path) -> None:
    from transformers import AutoModelForTokenClassification, pipeline

    loaded = AutoModelForTokenClassification.from_pretrained(exports / "ner")
    assert loaded.config.id2label[0] == "B-DT" and loaded.config.num_labels == 13
    texts = sample_inputs(model, "ner")
    ours = model.predict("ner", texts)
    pipe = pipeline(
        "token-classification", model=loaded, tokenizer=str(exports / "ner"), aggregation_strategy="simple"
    )
    theirs = pipe(texts, batch_size=8)
    total = 0
    for a, b in zip(ours, theirs, strict=True):
        assert [(e["type"], e["start"], e["end"]) for e in a["entities"]] == [
            (e["entity_group"], e["start"], e["end"]) for e in b
        ]
        total += len(b)
    assert total > 0  # the comparison is not between two empty lists


def pipeline_rule_answers(folder: Path, task: Any, inputs: list[dict[str, str]]) -> list[str]:
    """The old transformers question-answering pipeline's decoding, on the exported model's logits."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    qa = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    s = task.settings
    answers = []
    for item in inputs:
        enc = tok(
            task.truncate_questions([item["question"]])[0],
            item["context"],
            truncation="only_second",
            max_length=s.max_length,
            stride=task.window_stride(),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            out = qa(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        best, null = (-1.0, 0, 0), 1.0
        for w in range(enc["input_ids"].shape[0]):
            context = np.array([i == 1 for i in enc.sequence_ids(w)])
            keep = context.copy()
            keep[0] = True  # [CLS]: the null answer
            probs = []
            for logits in (out.start_logits[w].numpy(), out.end_logits[w].numpy()):
                z = np.where(keep, logits, -10000.0)
                e = np.exp(z - z.max())
                probs.append(e / e.sum())
            start, end = probs
            null = min(null, float(start[0] * end[0]))
            scores = np.triu(np.outer(np.where(context, start, 0), np.where(context, end, 0)))
            scores = np.tril(scores, s.max_answer_length - 1)
            i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
            if scores[i, j] > best[0]:
                offsets = enc["offset_mapping"][w]
                best = (float(scores[i, j]), int(offsets[i][0]), int(offsets[j][1]))
        answers.append("" if null > best[0] else item["context"][best[1] : best[2]])
    return answers


def test_question_answering_export_agrees_with_the_joint_model(model: Any, exports: Path) -> None:
    task = model.task("mrc")
    records = task.read(sample_path("mrc", "dev"), labeled=False)
    inputs = [inputs_of("mrc", r) for r in records]
    ours = [x["answer"] for x in model.predict("mrc", inputs)]
    theirs = pipeline_rule_answers(exports / "mrc", task, inputs)
    windows = [len(task.featurize({k: [r[k]] for k in r}, [0])["input_ids"]) for r in records]
    single = [i for i, n in enumerate(windows) if n == 1]
    assert single, "no single-window sample to compare on"
    # One window: both rules rank spans and the null answer identically.
    assert [ours[i] for i in single] == [theirs[i] for i in single]
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    print(f"mrc: {agree}/{len(ours)} answers agree ({len(single)} single-window questions all agree)")


def test_head_only_exports_load_as_an_encoder_plus_the_head_weights(model: Any, exports: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from heads import build_head

    for task in ("re", "dp", "wos"):
        folder = exports / task
        meta = json.loads((folder / "klue_head.json").read_text(encoding="utf-8"))
        assert meta["kind"] == model.model.head_specs[task]["kind"] and "README.md" in {
            p.name for p in folder.iterdir()
        }
        encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()
        head = build_head(meta["kind"], encoder.config.hidden_size, **meta["args"]).eval()
        head.load_state_dict(load_file(str(folder / "klue_head.safetensors")))
        t = model.task(task)
        records = t.read(sample_path(task, "dev"), labeled=False)[:3]
        features, outputs = model.run(task, records, batch_size=1)  # same padding as below
        from mtl.batching.collate import batch_for
        from mtl.batching.featurize import feature_lengths
        from mtl.batching.prepare import Split

        batch = batch_for(t, Split(records, features, feature_lengths(features)), [0], "cpu")
        with torch.no_grad():
            hidden = encoder(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state
            pred = head.predict(head(hidden, batch), batch)
        for key, value in pred.items():
            np.testing.assert_allclose(
                value[0].float().numpy(), np.asarray(outputs[0][key], dtype=np.float32), atol=1e-5
            )
    tok = AutoTokenizer.from_pretrained(exports / "re")
    assert "[SUBJ:PER]" in tok.get_vocab()  # the RE entity markers travel with the tokenizer
    assert "token_type_ids" not in tok("a", "b")


def test_export_refuses_a_folder_that_is_not_empty(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "x.txt").write_text("keep me")
    assert main(["export", "--checkpoint", str(checkpoint), "--task", "ynat", "--output", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err and (tmp_path / "x.txt").read_text() == "keep me"


def test_a_head_that_does_not_map_onto_the_transformers_class_is_not_exported(
    model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mtl.serving.export as export

    # Pretend the classification head reads another position than token 0: the check must catch it.
    original = export.check_export

    def shifted(encoder: Any, head: Any, kind: str, *args: Any) -> float:
        class Shifted(torch.nn.Module):
            def forward(self, hidden: torch.Tensor, batch: Any) -> Any:
                return head(hidden.roll(1, dims=1), batch)

        return original(encoder, Shifted(), kind, *args)

    monkeypatch.setattr(export, "check_export", shifted)
    with pytest.raises(KlueInputError, match="differs from the joint model"):
        export.export_task(model, "ynat", tmp_path / "out")
