"""The name of every file and folder a run writes: one place, so readers and writers cannot drift.

A run folder (``train --output``)::

    last/                 the newest checkpoint, with training state (what --resume continues)
    best/                 the best checkpoint by train.select_metric (weights only)
    best-<task>/          each task's own best (weights only; train.save_task_best)
    task_best.json        which step and folder holds each best
    scoreboard.json/.md   the final evaluation
    budget.json/.md       the per-task budget the run trained with
    tensorboard/<run>/    one folder per run and per resume
    trainer/              the Trainer engine's own output folder
    eval/<checkpoint>/    what `evaluate` writes for a checkpoint of this run
    .features-cache/      featurized data, keyed by content

A checkpoint folder::

    config.json           encoder config + head specs       (mtl.modeling.model.CONFIG_NAME)
    model.safetensors     "encoder.*", "heads.<task>.*"     (mtl.modeling.model.WEIGHTS_NAME)
    tokenizer files       tokenizer.save_pretrained
    tasks.json            label names and other vocabularies per task
    run.json              resolved run config, library versions
    training_state/       state.json + tensors.safetensors, for --resume (``last`` only)

While a checkpoint is replaced (:func:`mtl.training.checkpoint.save_checkpoint`) two hidden siblings
exist for a moment: ``.<name>.tmp-<pid>`` (being written) and ``.<name>.old`` (the previous one,
moved aside). This module imports nothing, so every folder of ``mtl`` may use it.
"""

from __future__ import annotations

from pathlib import Path

# -- checkpoints in a run folder ----------------------------------------------------------------
LAST = "last"
BEST = "best"
TASK_BEST_JSON = "task_best.json"


def task_best_dir(task: str) -> str:
    """The folder name of ``task``'s own best checkpoint in a run folder."""
    return f"{BEST}-{task}"


# -- files of a checkpoint (besides the model's config.json and model.safetensors) ----------------
TASKS_FILE = "tasks.json"
RUN_FILE = "run.json"
STATE_DIR = "training_state"
STATE_FILE = "state.json"  # inside STATE_DIR: step, scheduler, sampler... as JSON
STATE_TENSORS_FILE = "tensors.safetensors"  # inside STATE_DIR: optimizer and RNG tensors
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# Vocabulary files a saved transformers tokenizer holds (one of them, depending on its kind).
TOKENIZER_VOCAB_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
)

# -- what else a run writes into its folder ---------------------------------------------------------
TENSORBOARD_DIR = "tensorboard"
TRAINER_DIR = "trainer"
EVAL_DIR = "eval"
FEATURES_CACHE_DIR = ".features-cache"
SCOREBOARD_JSON = "scoreboard.json"
SCOREBOARD_MD = "scoreboard.md"
BUDGET_JSON = "budget.json"
BUDGET_MD = "budget.md"
CLASSIFICATION_REPORT = "classification_report.txt"
#: task-interaction probes: <run>/interaction/<step-N or checkpoint name>/interaction.{json,png}
INTERACTION_DIR = "interaction"
INTERACTION_JSON = "interaction.json"
INTERACTION_PNG = "interaction.png"


def confusion_png(task: str) -> str:
    """The confusion-matrix picture of ``task`` that ``evaluate`` writes."""
    return f"confusion_{task}.png"


#: what a run writes besides its checkpoints (``--overwrite`` removes these; globs allowed)
RUN_OUTPUTS = (
    TENSORBOARD_DIR,
    TRAINER_DIR,
    EVAL_DIR,
    INTERACTION_DIR,
    TASK_BEST_JSON,
    SCOREBOARD_JSON,
    SCOREBOARD_MD,
    BUDGET_JSON,
    BUDGET_MD,
    CLASSIFICATION_REPORT,
    confusion_png("*"),
)


# -- the hidden siblings of a checkpoint being replaced -----------------------------------------------
def temporary_dir(checkpoint: Path, pid: int | str) -> Path:
    """Where process ``pid`` (``"*"``: any, as a glob) writes the next version of ``checkpoint`` before renaming it into place."""
    return checkpoint.parent / f".{checkpoint.name}.tmp-{pid}"


def moved_aside_dir(checkpoint: Path) -> Path:
    """Where the previous version of ``checkpoint`` waits while the new one is renamed into place."""
    return checkpoint.parent / f".{checkpoint.name}.old"


def hidden_siblings(checkpoint_name: str) -> str:
    """A glob of every hidden sibling of a checkpoint: temporary, moved aside, and the ``.<name>.v<N>``
    folders that the ``last``/``best`` symlinks of runs written by older versions point to."""
    return f".{checkpoint_name}.*"
