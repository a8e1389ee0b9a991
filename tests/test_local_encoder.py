"""Continuing from a local encoder folder: its own tokenizer is used, and a wrong vocabulary is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModel, RobertaConfig

from mtl.cli.main import main
from mtl.config import load_config
from mtl.errors import KlueInputError
from mtl.modeling.tokenizer import build_offline_tokenizer, encoder_tokenizer
from mtl.training.loop import train_loop
from mtl.training.session import build_session

DEMO = str(Path(__file__).parent.parent / "configs" / "demo.yaml")
TEXTS = ["5억원 무이자 융자는 되고 7천만원 이사비는 안된다", "KLUE 한국어 ㅋㅋ 北 (괄호) 3.5%"]


def _save_encoder(folder: Path, extra_rows: int = 0) -> None:
    """A tiny random RoBERTa saved with the offline tokenizer, as a from-scratch run would leave it."""
    tokenizer = build_offline_tokenizer(folder)
    config = RobertaConfig(
        vocab_size=len(tokenizer) + extra_rows,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config, add_pooling_layer=False).save_pretrained(folder)


def _config(folder: Path, *extra: str):  # noqa: ANN202
    cfg = load_config(DEMO, ["train.max_steps=2", "train.log_every=1", *extra])
    cfg.encoder.name = str(folder)
    cfg.encoder.random_init = False
    cfg.encoder.tokenizer = None
    cfg.encoder.architecture = {}
    cfg.tasks = {"ynat": cfg.tasks["ynat"]}
    return cfg


def test_training_from_a_local_folder_uses_the_folder_tokenizer(tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    _save_encoder(folder)
    saved = AutoModel.from_pretrained(folder).get_input_embeddings().weight.detach().clone()
    session = build_session(_config(folder), tmp_path / "run", progress=False)
    offline = build_offline_tokenizer()
    for text in TEXTS:
        assert session.tokenizer(text)["input_ids"] == offline(text)["input_ids"]
    assert torch.equal(session.model.encoder.get_input_embeddings().weight, saved)  # the folder's weights
    summary = train_loop(session, progress=False)
    assert summary["steps"] == 2
    assert "ynat" in summary["results"]


def test_an_override_must_agree_with_the_folder_tokenizer(tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    _save_encoder(folder)
    cfg = _config(folder)
    cfg.encoder.tokenizer = "offline"  # the same vocabulary as the folder's: accepted
    assert encoder_tokenizer(cfg.encoder).get_vocab() == build_offline_tokenizer().get_vocab()
    other = tmp_path / "other-tokenizer"
    tok = build_offline_tokenizer()
    tok.add_tokens(["새토큰"])
    tok.save_pretrained(other)
    cfg.encoder.tokenizer = str(other)
    with pytest.raises(KlueInputError, match="not the tokenizer saved with the encoder"):
        encoder_tokenizer(cfg.encoder)


def test_a_vocabulary_that_does_not_fit_the_embedding_names_both_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "encoder"
    _save_encoder(folder, extra_rows=7)
    rows = len(build_offline_tokenizer()) + 7
    config = yaml.safe_load(Path(DEMO).read_text(encoding="utf-8"))
    config["encoder"] = {"name": str(folder), "random_init": False}
    config["tasks"] = {"ynat": config["tasks"]["ynat"]}
    config["data_dir"] = str(Path(DEMO).parent.parent / "mtl" / "samples")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert main(["train", "--config", str(path), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{rows - 7} tokens" in err and f"{rows} rows" in err
