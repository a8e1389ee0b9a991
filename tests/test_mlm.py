"""Masked LM as a task: masking, text sources, the head, pretrained LM-head start, learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support import standin_mlm_folder
from transformers import RobertaForMaskedLM

from heads import build_head
from mtl.batching.featurize import featurize
from mtl.batching.stream import MultiTaskStream
from mtl.config import TaskConfig, load_config
from mtl.errors import KlueInputError
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.tasks import get_task
from mtl.tasks.mlm import eojeol_ids, mask_tokens
from mtl.training.session import build_session

DEMO = Path(__file__).parent.parent / "configs" / "demo.yaml"
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
]
MLM = {"kind": "masked_lm", "train": "@tasks", "batch_size": 8, "max_length": 64}


# -- masking -------------------------------------------------------------------------------------
def test_masking_picks_15_percent_and_splits_80_10_10() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(10, 1000, (400, 250))
    words = np.tile(np.arange(250), (400, 1))
    words[:, 0] = words[:, -1] = -1  # [CLS] / [SEP]
    masked, labels = mask_tokens(
        ids, words, np.random.default_rng(1), probability=0.15, whole_word=False, mask_id=4, vocab_size=1000
    )
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, -1].any()  # special tokens are never masked
    assert np.array_equal(labels[chosen], ids[chosen])  # labels are the original tokens
    assert abs(chosen[:, 1:-1].mean() - 0.15) < 0.005
    to_mask = (masked[chosen] == 4).mean()
    unchanged = (masked[chosen] == ids[chosen]).mean()  # 10% kept + the random draws that hit the same id
    assert abs(to_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01
    assert np.array_equal(masked[~chosen], ids[~chosen])


def test_whole_word_masking_masks_every_token_of_a_chosen_eojeol() -> None:
    text = "서울에서 김철수를 만났다 " * 40
    tokenizer = build_offline_tokenizer()
    enc = tokenizer(text, return_offsets_mapping=True)
    words = np.asarray([eojeol_ids(text, enc["offset_mapping"])])
    ids = np.asarray([enc["input_ids"]])
    _, labels = mask_tokens(
        ids,
        words,
        np.random.default_rng(3),
        probability=0.3,
        whole_word=True,
        mask_id=4,
        vocab_size=len(tokenizer),
    )
    chosen = labels[0] != -100
    for word in set(words[0][chosen]):
        assert chosen[words[0] == word].all(), f"word {word} only partly masked"
    assert 0 < chosen.mean() < 0.6


# -- reading and featurizing ---------------------------------------------------------------------
def test_text_sources_and_long_documents_split_not_truncated(tmp_path: Path) -> None:
    tokenizer = build_offline_tokenizer()
    corpus = tmp_path / "corpus.txt"
    long_doc = "가나다라마바사 " * 60
    corpus.write_text(f"짧은 문서\n\n{long_doc}\n짧은 문서\n", encoding="utf-8")
    settings = TaskConfig(kind="masked_lm", train=str(corpus), max_length=32)
    task = get_task("mlm", settings)
    task.setup(settings, tokenizer)
    records = task.read(corpus)
    assert [r["text"] for r in records] == ["짧은 문서", long_doc.strip()]  # blank lines and repeats dropped
    features = featurize(task, records)
    chunks = [ids for ids, i in zip(features["input_ids"], features["example_index"], strict=True) if i == 1]
    assert len(chunks) > 5 and all(len(c) <= 32 for c in chunks)
    originals = [
        [lab if lab != -100 else tok for tok, lab in zip(ids, labels, strict=True)]
        for ids, labels, i in zip(
            features["input_ids"], features["labels"], features["example_index"], strict=True
        )
        if i == 1
    ]
    body = [t for c in originals for t in c[1:-1]]  # every token of the document, in order
    assert body == tokenizer(long_doc.strip(), add_special_tokens=False)["input_ids"]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"body": "하나"}\n{"body": 3}\n', encoding="utf-8")
    other = get_task("mlm", TaskConfig(kind="masked_lm", text="body"))
    with pytest.raises(KlueInputError, match=r"docs.jsonl, line 2: column 'body' must be text"):
        other.read(jsonl)


def test_tasks_source_reads_training_files_only(tmp_path: Path) -> None:
    cfg = load_config(DEMO, [*TINY, "train.max_steps=1", f"output_dir={tmp_path}"])
    cfg.tasks = {"ynat": cfg.tasks["ynat"], "nli": cfg.tasks["nli"], "mlm": TaskConfig(**MLM)}
    session = build_session(cfg, tmp_path / "run", progress=False)
    mlm = session.data["mlm"]
    texts = {r["text"] for r in mlm.train.records} | {r["text"] for r in mlm.dev.records}
    train_text = {r["title"] for r in session.data["ynat"].train.records}
    train_text |= {t for r in session.data["nli"].train.records for t in (r["premise"], r["hypothesis"])}
    dev_text = {r["title"] for r in session.data["ynat"].dev.records}
    assert texts == train_text  # every training text, once
    assert not texts & (dev_text - train_text)  # never the dev files
    assert 1 <= len(mlm.dev.records) < len(mlm.train.records)  # a held-aside slice for the metrics
    assert not {r["text"] for r in mlm.dev.records} & {r["text"] for r in mlm.train.records}


def test_masks_are_drawn_on_the_host_before_the_batch_goes_to_the_device(tmp_path: Path) -> None:
    """On a GPU, masking the batch after its copy read it back (a host sync per tensor). The
    ``meta`` device stands in for it: nothing can be read back from a meta tensor."""
    cfg = load_config(DEMO, [*TINY, "train.max_steps=1", f"output_dir={tmp_path}"])
    cfg.tasks = {"ynat": cfg.tasks["ynat"], "mlm": TaskConfig(**MLM)}
    session = build_session(cfg, tmp_path / "run", progress=False)
    on_host = MultiTaskStream(session.data, sampler=iter(["mlm"] * 3), seed=0)  # type: ignore[arg-type]
    on_meta = MultiTaskStream(session.data, sampler=iter(["mlm"] * 3), seed=0, device="meta")  # type: ignore[arg-type]
    for _ in range(3):
        host, meta = on_host.task_batch("mlm"), on_meta.task_batch("mlm")
        assert all(t.device.type == "meta" for t in meta.values())
        assert {k: (t.shape, t.dtype) for k, t in meta.items()} == {
            k: (t.shape, t.dtype) for k, t in host.items()
        }
    assert on_meta.rng.bit_generator.state == on_host.rng.bit_generator.state  # the same masks were drawn


# -- the head ------------------------------------------------------------------------------------
def test_masked_only_and_full_projection_give_the_same_loss() -> None:
    torch.manual_seed(0)
    embeddings = torch.nn.Embedding(50, 16)
    masked_only, full = (build_head("masked_lm", 16, vocab_size=50, full_projection=f) for f in (False, True))
    full.load_state_dict(masked_only.state_dict())
    for head in (masked_only, full):
        head.tie_to(embeddings)
    assert set(masked_only.state_dict()) == {
        "dense.weight",
        "dense.bias",
        "layer_norm.weight",
        "layer_norm.bias",
        "bias",
    }
    hidden = torch.randn(3, 7, 16)
    labels = torch.full((3, 7), -100)
    labels[0, 2], labels[2, 5] = 11, 42
    a, b = masked_only(hidden, {"labels": labels}), full(hidden, {"labels": labels})
    torch.testing.assert_close(a.loss, b.loss)
    predicted = masked_only.predict(a, {"labels": labels})
    assert predicted["masked"].tolist() == [1.0, 0.0, 1.0]


def test_the_head_starts_from_the_pretrained_lm_head(tmp_path: Path) -> None:
    folder = standin_mlm_folder(tmp_path / "roberta")
    corpus = tmp_path / "corpus.txt"
    syllables = " ".join("가나다라마바사아자차카타파하")
    corpus.write_text(f"{syllables} 문서\n문서 {syllables}\n{syllables}\n", encoding="utf-8")
    overrides = [f"encoder.name={folder}", "encoder.random_init=false", "encoder.tokenizer=null"]
    cfg = load_config(DEMO, [*overrides, f"output_dir={tmp_path}"])
    cfg.tasks = {"mlm": TaskConfig(kind="masked_lm", train=str(corpus), max_length=32, batch_size=2)}
    session = build_session(cfg, tmp_path / "run", progress=False)
    reference = RobertaForMaskedLM.from_pretrained(str(folder)).eval()
    head = session.model.heads["mlm"]
    for name in ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias"):
        torch.testing.assert_close(
            head.state_dict()[name], reference.lm_head.state_dict()[name], rtol=0, atol=0
        )
    # The joint model computes the pretrained model's logits at the masked positions.
    session.model.eval()
    stream = session.make_stream()
    batch = next(b for b in stream if (b["labels"] != -100).any())
    with torch.no_grad():
        ours = session.model("mlm", **{k: v for k, v in batch.items() if k != "task"}).outputs["logits"]
        theirs = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(ours, theirs[batch["labels"] != -100], rtol=1e-5, atol=1e-5)


def test_a_klue_mtl_checkpoint_is_an_encoder_and_lm_head_to_start_from(tmp_path: Path) -> None:
    cfg = load_config(DEMO, [*TINY, "train.max_steps=1", f"output_dir={tmp_path}"])
    cfg.tasks = {"ynat": cfg.tasks["ynat"], "mlm": TaskConfig(**MLM)}
    first = build_session(cfg, tmp_path / "a", progress=False)
    first.save("last", None)
    again = load_config(DEMO, [*TINY, f"encoder.name={tmp_path / 'a' / 'last'}", "encoder.random_init=false"])
    again.encoder.tokenizer = None  # the checkpoint's own tokenizer
    again.tasks = {"nli": again.tasks["nli"], "mlm": TaskConfig(**MLM)}
    second = build_session(again, tmp_path / "b", progress=False)
    for name, tensor in first.model.encoder.state_dict().items():
        assert torch.equal(tensor, second.model.encoder.state_dict()[name]), name
    for name, tensor in first.model.heads["mlm"].state_dict().items():
        assert torch.equal(tensor, second.model.heads["mlm"].state_dict()[name]), name


# -- learning ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_masked_lm_overfits_the_bundled_samples_text(tmp_path: Path) -> None:
    from mtl.training.loop import train_loop

    overrides = [
        "encoder.architecture.hidden_size=128",
        "encoder.architecture.num_hidden_layers=2",
        "encoder.architecture.num_attention_heads=2",
        "encoder.architecture.intermediate_size=256",
        "encoder.architecture.hidden_dropout_prob=0",  # memorising is the point here
        "encoder.architecture.attention_probs_dropout_prob=0",
        "train.max_steps=1000",
        "train.learning_rate=2e-3",
        "train.warmup_ratio=0.02",
        "train.weight_decay=0",
        f"output_dir={tmp_path}",
    ]
    cfg = load_config(DEMO, overrides)
    text_from = {"ynat": "ynat_train.json"}  # 34 headlines, 665 tokens
    cfg.tasks = {"mlm": TaskConfig(**{**MLM, "batch_size": 16, "max_length": 32, "text_from": text_from})}
    session = build_session(cfg, tmp_path / "run", progress=False)
    # Score the text it trained on (what overfitting means), with the fixed evaluation masks.
    session.data["mlm"].dev = session.data["mlm"].train
    summary = train_loop(session, progress=False)
    assert summary["results"]["mlm"]["masked_accuracy"] >= 95.0, summary["results"]


def test_export_is_a_roberta_for_masked_lm_and_a_starting_point(tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    from mtl.serving.api import KlueMultiTask
    from mtl.serving.export import export_task

    folder = standin_mlm_folder(tmp_path / "roberta")
    corpus = tmp_path / "corpus.txt"
    syllables = " ".join("가나다라마바사아자차카타파하")
    corpus.write_text(f"{syllables} 문서\n문서 {syllables}\n{syllables}\n", encoding="utf-8")
    overrides = [f"encoder.name={folder}", "encoder.random_init=false", "encoder.tokenizer=null"]
    cfg = load_config(DEMO, [*overrides, f"output_dir={tmp_path}"])
    cfg.tasks = {"mlm": TaskConfig(kind="masked_lm", train=str(corpus), max_length=32, batch_size=2)}
    session = build_session(cfg, tmp_path / "run", progress=False)
    with torch.no_grad():
        session.model.heads["mlm"].bias.add_(0.5)  # no longer the pretrained head: the export carries ours
    session.save("last", None)
    exported = export_task(
        KlueMultiTask.from_pretrained(tmp_path / "run" / "last"), "mlm", tmp_path / "export"
    )
    assert exported["class"] == "AutoModelForMaskedLM"
    loaded = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "export")).eval()
    session.model.eval()
    batch = next(b for b in session.make_stream() if (b["labels"] != -100).any())
    with torch.no_grad():
        ours = session.model("mlm", **{k: v for k, v in batch.items() if k != "task"}).outputs["logits"]
        theirs = loaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(ours, theirs[batch["labels"] != -100], rtol=1e-5, atol=1e-5)
    # ...and the exported folder is an encoder (and masked-LM head) to train from.
    again = load_config(
        DEMO, [f"encoder.name={tmp_path / 'export'}", "encoder.random_init=false", "encoder.tokenizer=null"]
    )
    again.tasks = {"mlm": TaskConfig(kind="masked_lm", train=str(corpus), max_length=32, batch_size=2)}
    second = build_session(again, tmp_path / "second", progress=False)
    for name, tensor in session.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
