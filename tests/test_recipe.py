"""Issue 11, the default recipe against KLUE-baseline: per-task budgets, head arguments, fp32 heads,
per-task optimiser groups, MRC windows stepped by doc_stride, RE particle re-attachment."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from test_engines import no_eval, run, tiny_config

from mtl.batching.collate import batch_for
from mtl.batching.featurize import featurize
from mtl.batching.prepare import add_task_tokens, setup_task
from mtl.cli.main import main
from mtl.config import EncoderConfig, RunConfig, TaskConfig, load_config
from mtl.errors import KlueInputError
from mtl.modeling.encoder import build_encoder
from mtl.modeling.tokenizer import build_offline_tokenizer
from mtl.training.budget import budget_rows, declared_sizes, solve_probabilities
from mtl.training.optim import build_optimizer, build_scheduler
from mtl.training.session import build_model, build_session
from samplers import TemperatureSampler

CONFIGS = Path(__file__).parent.parent / "configs"
# KLUE-baseline's epochs (run_all.sh, base models), typed here rather than read from the task classes.
BASELINE_EPOCHS = {"ynat": 4, "nli": 5, "sts": 4, "ner": 3, "re": 3, "dp": 10, "mrc": 5, "wos": 5}
# KLUE train sizes in training units as the issue gives them (MRC/WoS at the low end of the estimates).
KLUE_SIZES = {
    "ynat": 45678,
    "nli": 24998,
    "sts": 11668,
    "ner": 21008,
    "re": 32470,
    "dp": 10000,
    "mrc": 17554 * 2,
    "wos": 58000,
}


# -- 1. budgets -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["klue_roberta_small", "klue_roberta_base", "klue_roberta_large", "klue_all"]
)
def test_default_recipes_give_every_task_at_least_the_baseline_epochs(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    for sizes in (declared_sizes(cfg), KLUE_SIZES, {**KLUE_SIZES, "wos": 70000, "mrc": 17554 * 5 // 2}):
        rows = budget_rows(cfg, sizes)
        assert {r.task for r in rows} == set(BASELINE_EPOCHS)
        for r in rows:
            assert r.epochs >= BASELINE_EPOCHS[r.task], (name, r)
        assert sum(r.probability for r in rows) == pytest.approx(1.0)


def test_budget_command_prints_the_table_without_data(capsys: pytest.CaptureFixture) -> None:
    assert main(["budget", "--config", str(CONFIGS / "klue_roberta_base.yaml")]) == 0
    out = capsys.readouterr().out
    assert "max_steps 56000" in out
    shares = out.split("\nWork")[0]  # the first table; the work table follows
    rows = {line.split("|")[1].strip(): line for line in shares.splitlines() if line.startswith("| ")}
    assert set(BASELINE_EPOCHS) <= set(rows)
    for task, line in rows.items():
        if task in BASELINE_EPOCHS:
            epochs = float(line.split("|")[7])
            assert epochs >= BASELINE_EPOCHS[task]


def _cfg(**tasks: dict[str, Any]) -> RunConfig:
    cfg = RunConfig(tasks={n: TaskConfig(**s) for n, s in tasks.items()})
    cfg.train.max_steps = 1000
    return cfg


def test_sample_weight_multiplies_the_tempered_share() -> None:
    cfg = _cfg(a={"batch_size": 10}, b={"batch_size": 10, "sample_weight": 3.0})
    cfg.tasks = {"ynat": cfg.tasks["a"], "nli": cfg.tasks["b"]}
    sizes = {"ynat": 400, "nli": 100}
    rows = {r.task: r for r in budget_rows(cfg, sizes)}
    # T = 2: shares 20 : 10, times the weights 1 : 3 -> 20 : 30
    assert rows["ynat"].probability == pytest.approx(0.4)
    assert rows["nli"].probability == pytest.approx(0.6)
    assert rows["nli"].batches == pytest.approx(600)
    assert rows["nli"].examples == pytest.approx(6000) and rows["nli"].epochs == pytest.approx(60)


def test_epoch_targets_are_met_exactly_and_the_rest_shares_the_remainder() -> None:
    cfg = RunConfig(
        tasks={
            "ynat": TaskConfig(batch_size=10, epochs=2),  # needs 2 * 1000 / 10 = 200 batches
            "nli": TaskConfig(batch_size=10),
            "sts": TaskConfig(batch_size=10),
        }
    )
    cfg.train.max_steps = 1000
    sizes = {"ynat": 1000, "nli": 400, "sts": 100}
    rows = {r.task: r for r in budget_rows(cfg, sizes)}
    assert rows["ynat"].batches == pytest.approx(200) and rows["ynat"].epochs == pytest.approx(2)
    # the other 800 batches split 20 : 10 by T = 2
    assert rows["nli"].batches == pytest.approx(800 * 2 / 3)
    assert rows["sts"].batches == pytest.approx(800 / 3)


def test_epoch_targets_that_do_not_fit_name_the_steps_they_need() -> None:
    cfg = RunConfig(
        tasks={"ynat": TaskConfig(batch_size=10, epochs=3), "nli": TaskConfig(batch_size=10, epochs=1)}
    )
    cfg.train.max_steps = 100
    with pytest.raises(KlueInputError, match=r"need 400 steps.*max_steps 100"):
        solve_probabilities(cfg, {"ynat": 1000, "nli": 1000})


def test_epochs_and_anneal_together_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(KlueInputError, match="tasks.ynat.epochs"):
        load_config(CONFIGS / "demo.yaml", ["tasks.ynat.epochs=2", "sampler.anneal_to=1.0"])


def test_weighted_sampler_state_resumes_and_refuses_other_weights() -> None:
    sizes, weights = {"a": 10, "b": 20}, {"a": 2.0, "b": 0.5}
    s = TemperatureSampler(sizes, temperature=2.0, seed=3, weights=weights)
    s.draw(17)
    state = json.loads(json.dumps(s.state_dict()))
    rest = s.draw(50)
    t = TemperatureSampler(sizes, temperature=2.0, seed=3, weights=weights)
    t.load_state_dict(state)
    assert t.draw(50) == rest
    with pytest.raises(ValueError, match="weights"):
        TemperatureSampler(sizes, temperature=2.0, seed=3).load_state_dict(state)
    # no weights: the state has no weights entry (checkpoints from before weights still load)
    assert "weights" not in TemperatureSampler(sizes, seed=3).state_dict()["config"]


def test_expected_counts_match_the_drawn_frequencies() -> None:
    s = TemperatureSampler({"a": 100, "b": 25}, temperature=2.0, seed=0, weights={"a": 1.0, "b": 3.0})
    expected = s.expected_counts(20000)
    assert expected["a"] == pytest.approx(20000 * 10 / 25) and expected["b"] == pytest.approx(20000 * 15 / 25)
    drawn = s.draw(20000)
    assert drawn.count("b") == pytest.approx(expected["b"], rel=0.03)


def test_train_writes_the_budget_into_the_run_folder(tmp_path: Path) -> None:
    extra = [*no_eval(), "tasks.ynat.epochs=1", "train.gradient_accumulation_steps=1"]
    cfg = tiny_config(tmp_path, 400, extra)
    from mtl.cli.commands import run_training

    session_dir = tmp_path / "run"
    cfg.train.max_steps = 1  # only the table matters here
    with pytest.raises(KlueInputError, match="train.max_steps"):
        run_training(cfg, session_dir, resume=False)  # the target alone needs more than 1 step
    cfg.train.max_steps = 200
    run_training(cfg, session_dir, resume=False)
    budget = json.loads((session_dir / "budget.json").read_text())
    ynat = next(r for r in budget["tasks"] if r["task"] == "ynat")
    assert ynat["epochs"] == pytest.approx(1.0) and ynat["target_epochs"] == 1.0
    assert "| ynat |" in (session_dir / "budget.md").read_text()


# -- 3. heads at baseline strength --------------------------------------------------------------
def _tasks(settings: dict[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
    cfg = RunConfig(
        encoder=EncoderConfig(
            tokenizer="offline",
            random_init=True,
            architecture={
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
            },
        ),
        tasks={n: TaskConfig(**s) for n, s in settings.items()},
    )
    tokenizer = build_offline_tokenizer()
    tasks = [setup_task(n, cfg, tokenizer) for n in settings]
    add_task_tokens(tokenizer, tasks)
    return build_encoder(cfg.encoder, len(tokenizer)), tasks


def test_dp_head_defaults_to_the_baseline_widths_and_takes_config_overrides() -> None:
    encoder, (dp,) = _tasks({"dp": {"head": {"lstm_layers": 1, "dropout": 0.2}}})
    args = dp.model_head_args()
    assert (args["arc_dim"], args["label_dim"], args["pos_dim"]) == (512, 256, 256)
    assert args["dropout"] == 0.2 and args["lstm_layers"] == 1
    model = build_model(encoder, [dp])
    head = model.heads["dp"]
    assert head.lstm is not None and head.lstm.bidirectional and head.arc_weight.shape == (512, 512)
    assert model.head_specs["dp"]["args"] == args  # saved with the checkpoint


def test_an_unknown_head_argument_is_a_config_error_naming_the_key() -> None:
    encoder, tasks = _tasks({"ner": {"head": {"arc_dim": 3}}})
    with pytest.raises(KlueInputError, match=r"tasks\.ner\.head"):
        build_model(encoder, tasks)


def test_dp_bilstm_ignores_padded_words() -> None:
    from heads.biaffine import BiaffineHead

    torch.manual_seed(0)
    head = BiaffineHead(8, num_labels=3, arc_dim=6, label_dim=4, lstm_layers=1, dropout=0.0).eval()
    hidden = torch.randn(1, 6, 8)
    short = {"word_starts": torch.tensor([[1, 2]]), "word_ends": torch.tensor([[1, 3]])}
    short["word_mask"] = torch.tensor([[True, True]])
    padded = {k: torch.cat([v, v[:, :1]], dim=1) for k, v in short.items()}
    padded["word_mask"] = torch.tensor([[True, True, False]])
    a = head(hidden, short).outputs["arc_logits"]
    b = head(hidden, padded).outputs["arc_logits"]
    torch.testing.assert_close(a[0, :, :3], b[0, :2, :3])


# -- 4. heads and losses in fp32 under autocast -------------------------------------------------
def test_every_head_computes_logits_and_loss_in_fp32_under_bf16_autocast(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, 1, no_eval())
    session = build_session(cfg, tmp_path / "fp32", progress=False)
    assert len(session.data) == 8
    for name, td in session.data.items():
        batch = batch_for(td.task, td.train, list(range(min(4, len(td.train.features)))), "cpu")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = session.model(name, **batch)
            # autocast is on: a plain matmul of the encoder's output would be bf16
            hidden = session.model.encoder(input_ids=batch["input_ids"]).last_hidden_state
            assert (hidden @ hidden.transpose(1, 2)).dtype == torch.bfloat16
        assert out.loss is not None and out.loss.dtype == torch.float32, name
        for key, value in out.outputs.items():
            if value.is_floating_point():
                assert value.dtype == torch.float32, (name, key)


# -- 5. per-task optimiser settings ---------------------------------------------------------------
def test_head_groups_take_their_task_lr_weight_decay_and_warmup(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        100,
        [
            *no_eval(),
            "train.weight_decay=0.0",
            "train.warmup_ratio=0.1",
            "train.encoder_learning_rate=1e-4",
            "tasks.mrc.learning_rate=3e-5",
            "tasks.mrc.warmup_ratio=0.0",
            "tasks.wos.weight_decay=0.01",
        ],
    )
    from mtl.samples import ONTOLOGY_PATH

    # WoS needs its slots: the bundled ontology, named (there is no silent fallback to it)
    encoder, tasks = _tasks({"ner": {}, "mrc": {}, "wos": {"ontology": str(ONTOLOGY_PATH)}})
    cfg.tasks = {n: cfg.tasks[n] for n in ("ner", "mrc", "wos")}
    model = build_model(encoder, tasks)
    optimizer = build_optimizer(model, cfg.train, cfg)
    scheduler = build_scheduler(optimizer, cfg.train)
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}

    def group(name: str) -> dict:
        return by_param[id(dict(model.named_parameters())[name])]

    enc = next(n for n, p in model.named_parameters() if n.startswith("encoder.") and p.ndim == 2)
    mrc_w = next(n for n, p in model.named_parameters() if n.startswith("heads.mrc.") and p.ndim == 2)
    wos_w = next(n for n, p in model.named_parameters() if n.startswith("heads.wos.") and p.ndim == 2)
    wos_b = next(
        n for n in dict(model.named_parameters()) if n.startswith("heads.wos.") and n.endswith("bias")
    )
    assert group(enc)["initial_lr"] == 1e-4 and group(enc)["weight_decay"] == 0.0
    assert group(mrc_w)["initial_lr"] == 3e-5
    assert group(wos_w)["weight_decay"] == 0.01 and group(wos_b)["weight_decay"] == 0.0
    # step 0: the encoder warms up (10 steps) from 0, MRC starts at its full rate
    assert group(enc)["lr"] == 0.0 and group(mrc_w)["lr"] == pytest.approx(3e-5)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert group(enc)["lr"] == pytest.approx(1e-4)
    assert group(mrc_w)["lr"] == pytest.approx(3e-5 * 90 / 100)


@pytest.mark.slow
def test_recipe_settings_keep_engine_parity_and_bitwise_resume(tmp_path: Path, monkeypatch) -> None:
    import signal

    from mtl.batching.stream import MultiTaskStream

    recipe = [
        *no_eval(),
        "tasks.mrc.learning_rate=1e-3",
        "tasks.mrc.warmup_ratio=0.0",
        "tasks.wos.weight_decay=0.0",
        "tasks.dp.head={lstm_layers: 1}",
        "tasks.ynat.epochs=5",
        "tasks.sts.sample_weight=2.0",
    ]
    loop, w_loop = run(tmp_path / "p", "loop", 20, extra=recipe)
    trainer, w_trainer = run(tmp_path / "p", "trainer", 20, extra=recipe)
    for a, b in zip(loop["losses"], trainer["losses"], strict=True):
        assert abs(a - b) <= 1e-5 * max(abs(a), 1e-8)
    for name, tensor in w_loop.items():
        torch.testing.assert_close(tensor, w_trainer[name], rtol=1e-4, atol=1e-6, msg=name)

    original = MultiTaskStream.__next__
    draws = {"n": 0}

    def next_with_sigterm(self):  # noqa: ANN001, ANN202
        draws["n"] += 1
        if draws["n"] == 11:
            signal.raise_signal(signal.SIGTERM)
        return original(self)

    monkeypatch.setattr(MultiTaskStream, "__next__", next_with_sigterm)
    stopped, _ = run(tmp_path / "r", "loop", 20, extra=recipe)
    monkeypatch.setattr(MultiTaskStream, "__next__", original)
    assert stopped["stopped"]
    _, resumed = run(tmp_path / "r", "loop", 20, resume=True, extra=recipe)
    for name, tensor in w_loop.items():
        assert torch.equal(tensor, resumed[name]), name


# -- 6. MRC windows stepped by doc_stride ---------------------------------------------------------
def baseline_window_count(context_tokens: int, query_tokens: int, max_length: int, doc_stride: int) -> int:
    """KLUE-baseline (transformers 3.5 squad_convert_example_to_features): windows start every
    doc_stride tokens and hold max_length - query - 3 context tokens; the loop stops at the first
    window that reaches the end of the context."""
    room = max_length - query_tokens - 3
    starts = 0
    count = 0
    while True:
        count += 1
        if starts + room >= context_tokens:
            return count
        starts += doc_stride


def test_mrc_windows_start_doc_stride_tokens_apart_as_the_baseline_cuts_them() -> None:
    encoder, (mrc,) = _tasks({"mrc": {"max_length": 64, "max_query_length": 12, "doc_stride": 16}})
    context = "아주 오래전 바닷가 마을에는 작은 등대가 하나 있었다. 등대지기는 매일 밤 불을 밝혔다. " * 8
    question = "등대지기는 무엇을 했나요?"
    rec = {
        "guid": "q",
        "title": "t",
        "context": context,
        "question": question,
        "answers": [],
        "is_impossible": True,
    }
    feats = featurize(mrc, [rec], progress=False)
    tok = mrc.tokenizer
    ctx = tok(context, add_special_tokens=False, return_offsets_mapping=True)
    q = len(tok(mrc.truncate_questions([question])[0], add_special_tokens=False)["input_ids"])
    n = len(ctx["input_ids"])
    assert n > 200
    expected = baseline_window_count(n, q, 64, 16)
    assert len(feats) == expected == 1 + math.ceil((n - (64 - q - 3)) / 16)
    # window k's first context token is context token k * doc_stride
    for k, row in enumerate(feats):
        offsets = [o for o in zip(row["offsets"][::2], row["offsets"][1::2], strict=True) if o[0] >= 0]
        assert offsets[0][0] == ctx["offset_mapping"][k * 16][0]


def test_mrc_window_overlap_keeps_the_run_qa_meaning() -> None:
    _, (mrc,) = _tasks({"mrc": {"max_length": 64, "max_query_length": 12, "window_overlap": 16}})
    context = "아주 오래전 바닷가 마을에는 작은 등대가 하나 있었다. " * 8
    rec = {
        "guid": "q",
        "title": "t",
        "context": context,
        "question": "무엇?",
        "answers": [],
        "is_impossible": True,
    }
    feats = featurize(mrc, [rec], progress=False)
    first = [i for i, m in zip(feats[0]["input_ids"], feats[0]["span_mask"], strict=True) if m]
    second = [i for i, m in zip(feats[1]["input_ids"], feats[1]["span_mask"], strict=True) if m]
    assert second[:16] == first[-16:]


# -- 7. RE ## re-attachment ---------------------------------------------------------------------
def test_re_particle_after_a_closing_marker_is_a_wordpiece_continuation() -> None:
    _, (re_task,) = _tasks({"re": {}})
    sentence = "이도윤은 여수에서 태어났다."
    rec = {
        "guid": "r",
        "sentence": sentence,
        "subject": {"word": "이도윤", "start": 0, "end": 2, "type": "PER"},
        "object": {"word": "여수", "start": 5, "end": 6, "type": "LOC"},
        "label": 0,
        "source": "t",
    }
    row = featurize(re_task, [rec], progress=False)[0]
    tokens = re_task.tokenizer.convert_ids_to_tokens(row["input_ids"])
    after_obj = tokens[tokens.index("[/OBJ]") + 1]
    after_subj = tokens[tokens.index("[/SUBJ]") + 1]
    plain = re_task.tokenizer.convert_ids_to_tokens(
        re_task.tokenizer("[OBJ:LOC]여수[/OBJ]에서", add_special_tokens=False)["input_ids"]
    )
    assert plain[plain.index("[/OBJ]") + 1] == "에"  # what the tokenizer alone does
    assert after_obj == "##에"  # 여수[/OBJ]에서: the particle continues the word
    assert after_subj == "##은"  # 이도윤[/SUBJ]은
    # a space after the marker keeps a new word
    spaced = dict(rec, sentence="이도윤 는 여수 에서 태어났다.")
    spaced["object"] = {"word": "여수", "start": 6, "end": 7, "type": "LOC"}
    tokens = re_task.tokenizer.convert_ids_to_tokens(
        featurize(re_task, [spaced], progress=False)[0]["input_ids"]
    )
    assert not tokens[tokens.index("[/OBJ]") + 1].startswith("##")
