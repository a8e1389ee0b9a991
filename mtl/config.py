"""Run configuration: typed dataclasses, read from YAML, overridden by ``key=value`` arguments.

Every knob of a run lives here (torchtune style), so a config file is the whole recipe. Unknown
keys and ill-typed values are input errors naming the file and the key, raised before any data is
read or any model is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtl.errors import KlueInputError
from samplers import SAMPLERS

#: ``train.precision`` values (what each means: mtl/modeling/precision.py)
PRECISIONS = ("auto", "fp16", "bf16", "fp32")


def _config_error(source: str | None, key: str | None, message: str) -> KlueInputError:
    """A config error names the offending key rather than a record."""
    return KlueInputError(source, key, message, kind="key")


SAMPLES_ALIAS = "@samples"  # data_dir value naming the bundled samples
REPORTERS = ("tensorboard", "wandb")  # train.report_to
ATTENTION_KERNELS = ("sdpa", "eager")  # encoder.attn_implementation
EPOCH_TARGETS = ("exact", "scale")  # train.epoch_targets


@dataclass
class EncoderConfig:
    """Which encoder and tokenizer to use, and how to initialise the encoder."""

    name: str = "klue/roberta-base"  # hub id or local folder of a pretrained encoder
    tokenizer: str | None = None  # defaults to ``name``; "offline" builds the project's own WordPiece
    random_init: bool = False  # True: build the encoder from ``architecture`` with random weights
    architecture: dict[str, Any] = field(default_factory=dict)  # RobertaConfig overrides for random_init
    # Attention kernel: "sdpa" (torch's scaled_dot_product_attention) where transformers supports it
    # for the encoder, else "eager"; "eager" selectable (e.g. to read attention weights).
    attn_implementation: str = "sdpa"


@dataclass
class TaskConfig:
    """One task of the run: its data and its per-task settings."""

    train: str | None = None  # file of the train split (official release format or hub export)
    dev: str | None = None  # file of the dev split, used for evaluation
    # A task of your own, declared here without Python (see mtl/tasks/generic.py): its kind, the
    # text column(s), the target column, optionally the label names and an id column.
    kind: str | None = None  # single_sentence_classification | sentence_pair_classification | ...
    text: str | list[str] | None = None
    label: str | None = None
    labels: list[str] | None = None
    guid: str | None = None
    max_length: int | None = None  # defaults to the task's own (KLUE-baseline's for KLUE tasks)
    # Rows of one micro-batch over all processes together (N processes take batch_size / N each);
    # defaults to the task's own (32).
    batch_size: int | None = None
    eval_batch_size: int | None = None  # defaults to the task's own (64)
    loss_weight: float = 1.0
    doc_stride: int = 128  # MRC: window stride over long contexts
    max_query_length: int = 64  # MRC
    max_answer_length: int = 30  # MRC: longest answer in tokens; WoS: longest value span
    use_pos: bool = True  # DP: feed the last morpheme's POS tag of each word to the parser
    ontology: str | None = None  # WoS: ontology.json (domain-slot -> values)
    # masked_lm (mtl/tasks/mlm.py): "@tasks" reads these tasks' train files (default: the config's tasks)
    text_from: dict[str, str] | None = None
    mask_probability: float = 0.15
    whole_word_masking: bool = False  # mask whole eojeols (space-delimited words)
    max_train_examples: int | None = None  # keep only the first N records (quick experiments)
    max_dev_examples: int | None = None
    # -- per-task recipe: budget, head, optimiser (README "Per-task budgets") --
    sample_weight: float = 1.0  # multiplies the task's temperature share of the batches
    epochs: float | None = None  # target epochs over the run; sampling probabilities are solved to meet it
    train_size: int | None = None  # units `klue-mtl budget` assumes (default: the KLUE train size)
    dev_size: int | None = (
        None  # dev units `klue-mtl budget` assumes per evaluation (default: the KLUE dev size)
    )
    head: dict[str, Any] = field(default_factory=dict)  # head arguments, merged over the task's defaults
    learning_rate: float | None = None  # this task's head (default: train.learning_rate)
    weight_decay: float | None = None  # this task's head (default: train.weight_decay)
    warmup_ratio: float | None = None  # this task's head (default: train.warmup_ratio)
    # MRC: windows overlap by this many tokens (transformers run_qa.py meaning); unset: ``doc_stride``
    # is the step between window starts (the baseline's transformers-3.5 meaning).
    window_overlap: int | None = None
    # The metric this task's own best checkpoint (<output>/best-<task>) is chosen by; default: the
    # task's ``selection_metric`` (KLUE-baseline's choice for the KLUE tasks, README "Per-task best").
    select_metric: str | None = None


@dataclass
class SamplerConfig:
    """How the tasks are mixed: the sampler's registry name (``samplers.SAMPLERS``) and its settings.

    The default ``temperature`` sampler draws task i with p_i ~ min(n_i, cap)^(1/T).
    """

    name: str = "temperature"
    temperature: float = 2.0
    cap: int | None = None
    anneal_to: float | None = None  # final temperature of a linear anneal over the run (None: fixed)


@dataclass
class TrainConfig:
    """Optimisation, evaluation and checkpointing."""

    engine: str = "loop"  # "loop" (the custom PyTorch loop) or "trainer" (MultiTaskTrainer)
    seed: int = 42
    max_steps: int = 1000  # optimizer steps
    learning_rate: float = 5e-5
    encoder_learning_rate: float | None = None  # the shared encoder's (default: learning_rate)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    adam_epsilon: float = 1e-8
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    lr_scheduler: str = "linear"
    eval_every: int = 0  # steps between evaluations (0: only at the end)
    save_every: int = 0  # steps between checkpoints (0: only at the end)
    log_every: int = 10
    select_metric: str = "average"  # "average" of each task's main metric, or "<task>.<metric>"
    # "auto" (CUDA: bf16 autocast from compute capability 8.0, else fp16 + loss scaling; CPU: fp32),
    # "fp16", "bf16" or "fp32" (mtl/modeling/precision.py)
    precision: str = "auto"
    fused_adamw: bool = True  # fused AdamW kernels, on CPU as on CUDA (same maths, one pass)
    compile: bool = False  # torch.compile the encoder (mtl.training.run.compile_model), both engines
    # A step whose loss or gradient norm is NaN/inf: "stop", or "skip" it (no update; counted).
    nan_policy: str = "stop"
    # Each task is also validated alone this many times per epoch of its own (from the budget), for its
    # per-task best, where ``eval_every`` is coarser than that (KLUE-baseline validates 4 times per
    # epoch); 0: only every ``eval_every`` steps.
    evals_per_epoch: float = 0.0
    # Epoch targets (tasks.<t>.epochs) that need more steps than max_steps: "exact" refuses the run,
    # "scale" lowers every target by one factor so they fit (a smoke run of a preset, same shares).
    epoch_targets: str = "exact"
    # keep <output>/best-<task>: weights only, one copy per distinct step (README "Per-task best checkpoints")
    save_task_best: bool = True
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # tensorboard, wandb
    # Recompute the encoder's activations in the backward pass (less memory, ~30% more compute).
    gradient_checkpointing: bool = False
    # Before step 1 on a GPU, one forward + backward of each task's largest batch: stop early with the
    # options when one does not fit, or turn gradient checkpointing on when that makes it fit
    # (mtl/training/memory.py). No effect on CPU.
    memory_check: bool = True
    # Seconds the processes of a several-GPU run wait for each other in one collective before giving
    # up: long enough for the others to wait while rank 0 writes a large checkpoint.
    ddp_timeout: int = 3600
    # Multi-task strategies (mtl.training.strategies, README "Multi-task strategies"): K distinct
    # tasks per step, how their losses are weighted, how their encoder gradients are combined, and
    # the task-interaction probe every N steps (0: off).
    tasks_per_step: int = 1
    weighting: str = "static"  # static | uncertainty | dwa (or a registered name)
    dwa_window: int = 50  # steps per DWA window (weights from the last two windows' mean losses)
    aggregator: str = "sum"  # sum | upgrad | mgda | pcgrad | ... (TorchJD: pip install klue-mtl[strategies])
    interaction_every: int = 0


@dataclass
class RunConfig:
    """The whole recipe of a run."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data_dir: str | None = None  # relative task paths are resolved against this folder
    imports: list[str] = field(default_factory=list)  # modules that register tasks of your own
    output_dir: str = "runs/klue-mtl"
    # Featurization cache (default: <output folder>/.features-cache). A relative path resolves inside the
    # output folder; a config file may not name an absolute path or climb out with '..'.
    cache_dir: str | None = None

    def task_settings(self, task: str) -> TaskConfig:
        """The settings of ``task`` with the task's own defaults filled in."""
        from mtl.tasks import get_task

        cfg = self.tasks[task]
        defaults = type(get_task(task, cfg))
        filled = {
            "max_length": defaults.default_max_length,
            "batch_size": defaults.default_batch_size,
            "eval_batch_size": defaults.default_eval_batch_size,
        }
        return dataclasses.replace(cfg, **{k: v for k, v in filled.items() if getattr(cfg, k) is None})

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (saved with every checkpoint)."""
        return dataclasses.asdict(self)


# -- building from plain data -------------------------------------------------------------------
def _check_type(value: Any, tp: Any, where: str, source: str | None) -> Any:
    """Check (and gently coerce int -> float) ``value`` against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where, source)
            except KlueInputError as e:
                errors.append(e)
        raise errors[0]
    if tp is Any:
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise _config_error(source, where, f"expected a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise _config_error(source, where, f"expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_check_type(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str):
                # YAML 1.1 reads "3e-5" (no dot) as a string; accept any spelling of a number.
                try:
                    return float(value)
                except ValueError:
                    pass
            raise _config_error(source, where, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _config_error(source, where, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _config_error(source, where, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _config_error(source, where, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp}")  # a programming error, not user input


def _build(cls: type, data: Any, where: str, source: str | None) -> Any:
    if not isinstance(data, dict):
        raise _config_error(source, where or "top level", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _config_error(
            source,
            f"{prefix}{unknown[0]}",
            f"unknown config key; known keys here: {', '.join(sorted(names))}",
        )
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, path, source)
        elif cls is RunConfig and key == "tasks":
            if not isinstance(value, dict) or not value:
                raise _config_error(source, path, "expected a non-empty mapping of task name -> settings")
            kwargs[key] = _build_tasks(value, path, source, data.get("imports"))
        else:
            kwargs[key] = _check_type(value, tp, path, source)
    return cls(**kwargs)


def _build_tasks(value: dict[str, Any], path: str, source: str | None, imports: Any) -> dict[str, TaskConfig]:
    """Task settings by name: registered tasks, or tasks of your own declared with ``kind:``."""
    from mtl.tasks import KINDS, TASKS, load_plugins

    load_plugins(imports if isinstance(imports, list) else ())
    tasks = {}
    for name, settings in value.items():
        where = f"{path}.{name}"
        tc = _build(TaskConfig, settings or {}, where, source)
        if tc.kind is not None:
            if tc.kind not in KINDS:
                raise _config_error(source, f"{where}.kind", f"unknown kind; kinds: {', '.join(KINDS)}")
            if name in TASKS:
                raise _config_error(
                    source, where, f"{name!r} is a built-in task: give your task another name"
                )
            if not str(name).isidentifier():
                raise _config_error(source, where, "a task name is a short identifier (letters, digits, _)")
            from mtl.tasks import get_task

            try:
                get_task(name, tc)  # checks the definition's columns before any file is read
            except KlueInputError as e:
                raise _config_error(source, e.record, e.message) from None
        elif name not in TASKS:
            raise _config_error(
                source,
                where,
                f"unknown task; known: {', '.join(TASKS)} (or declare one with kind: {' | '.join(KINDS)})",
            )
        else:
            generic = [k for k in ("text", "label", "labels", "guid") if getattr(tc, k) is not None]
            if generic:
                raise _config_error(
                    source, f"{where}.{generic[0]}", f"only tasks declared with kind: take {generic[0]!r}"
                )
        tasks[name] = tc
    return tasks


def _validate(cfg: RunConfig, source: str | None) -> None:
    t = cfg.train
    checks = [
        (t.engine in ("loop", "trainer"), "train.engine", "must be 'loop' or 'trainer'"),
        (t.max_steps > 0, "train.max_steps", "must be > 0"),
        (t.learning_rate > 0, "train.learning_rate", "must be > 0"),
        (0 <= t.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)"),
        (t.gradient_accumulation_steps >= 1, "train.gradient_accumulation_steps", "must be >= 1"),
        (t.precision in PRECISIONS, "train.precision", f"must be one of {', '.join(PRECISIONS)}"),
        (t.nan_policy in ("stop", "skip"), "train.nan_policy", "must be 'stop' or 'skip'"),
        (t.eval_every >= 0 and t.save_every >= 0, "train.eval_every", "must be >= 0"),
        (t.evals_per_epoch >= 0, "train.evals_per_epoch", "must be >= 0"),
        (t.ddp_timeout > 0, "train.ddp_timeout", "must be > 0 (seconds)"),
        (
            1 <= t.tasks_per_step <= max(len(cfg.tasks), 1),
            "train.tasks_per_step",
            f"must be between 1 and the number of tasks ({len(cfg.tasks)})",
        ),
        (t.dwa_window >= 1, "train.dwa_window", "must be >= 1"),
        (t.interaction_every >= 0, "train.interaction_every", "must be >= 0 (0: off)"),
        (
            set(t.report_to) <= set(REPORTERS) and len(set(t.report_to)) == len(t.report_to),
            "train.report_to",
            f"a list of distinct names out of: {', '.join(REPORTERS)}",
        ),
        (
            cfg.encoder.attn_implementation in ATTENTION_KERNELS,
            "encoder.attn_implementation",
            f"must be one of: {', '.join(ATTENTION_KERNELS)}",
        ),
        (
            t.epoch_targets in EPOCH_TARGETS,
            "train.epoch_targets",
            f"must be one of: {', '.join(EPOCH_TARGETS)}",
        ),
        (
            cfg.sampler.name in SAMPLERS,
            "sampler.name",
            f"unknown sampler {cfg.sampler.name!r}; known samplers: {', '.join(sorted(SAMPLERS))} "
            "(a sampler of your own is registered with samplers.register_sampler in a module under imports:)",
        ),
        (cfg.sampler.temperature > 0, "sampler.temperature", "must be > 0"),
        (cfg.sampler.cap is None or cfg.sampler.cap >= 1, "sampler.cap", "must be >= 1"),
        (bool(cfg.tasks), "tasks", "name at least one task"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise _config_error(source, key, message)
    for name, tc in cfg.tasks.items():
        for key in ("batch_size", "eval_batch_size"):
            if getattr(tc, key) is not None and getattr(tc, key) < 1:
                raise _config_error(source, f"tasks.{name}.{key}", "must be >= 1")
        if tc.max_length is not None and not 16 <= tc.max_length <= 512:
            raise _config_error(source, f"tasks.{name}.max_length", "must be between 16 and 512")
        if tc.loss_weight < 0:
            raise _config_error(source, f"tasks.{name}.loss_weight", "must be >= 0")
        _validate_recipe(cfg, name, tc, source)
    sel = t.select_metric
    if sel != "average" and (sel.count(".") != 1 or sel.split(".")[0] not in cfg.tasks):
        raise _config_error(
            source, "train.select_metric", "must be 'average' or '<task>.<metric>' of a run task"
        )


def _validate_recipe(cfg: RunConfig, name: str, tc: TaskConfig, source: str | None) -> None:
    """The per-task budget, head and optimiser keys of ``tasks.<name>``."""
    checks = [
        (tc.sample_weight > 0, "sample_weight", "must be > 0"),
        (tc.epochs is None or tc.epochs > 0, "epochs", "must be > 0"),
        (tc.train_size is None or tc.train_size >= 1, "train_size", "must be >= 1"),
        (tc.dev_size is None or tc.dev_size >= 0, "dev_size", "must be >= 0"),
        (tc.learning_rate is None or tc.learning_rate > 0, "learning_rate", "must be > 0"),
        (tc.weight_decay is None or tc.weight_decay >= 0, "weight_decay", "must be >= 0"),
        (tc.warmup_ratio is None or 0 <= tc.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
        (tc.window_overlap is None or tc.window_overlap >= 0, "window_overlap", "must be >= 0"),
        (tc.doc_stride >= 1, "doc_stride", "must be >= 1"),
        (
            tc.epochs is None or cfg.sampler.anneal_to is None,
            "epochs",
            "epoch targets fix the sampling probabilities: they cannot be combined with sampler.anneal_to",
        ),
    ]
    for ok, key, message in checks:
        if not ok:
            raise _config_error(source, f"tasks.{name}.{key}", message)
    if tc.select_metric is not None:
        from mtl.tasks import get_task

        names = get_task(name, tc).metric_names
        if tc.select_metric not in names:
            raise _config_error(
                source, f"tasks.{name}.select_metric", f"not a {name} metric; its metrics: {', '.join(names)}"
            )
    lr = cfg.train.encoder_learning_rate
    if lr is not None and lr <= 0:
        raise _config_error(source, "train.encoder_learning_rate", "must be > 0")


# Keys naming folders the run writes to: a config file keeps them inside the output folder.
CONTAINED_PATH_KEYS = ("cache_dir",)


def check_contained_path(value: str, key: str, source: str | Path | None) -> None:
    """``value`` must be a relative path that stays inside the folder it is resolved against."""
    p = Path(value)
    if p.is_absolute() or value.startswith("~") or ".." in p.parts:
        raise _config_error(
            source,
            key,
            f"{value!r} must be a relative folder inside the output folder (no absolute path, no '..')",
        )


def check_config_paths(data: dict[str, Any], source: str | Path | None) -> None:
    """A config file (or a checkpoint's saved run config) cannot make the run write outside its output folder.

    Applied to the file's own data, before command-line overrides: what the user types on the command
    line is trusted, what a (possibly downloaded) file says is not.
    """
    for key in CONTAINED_PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            check_contained_path(value, key, source)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise _config_error(None, text, "overrides look like key=value (e.g. train.max_steps=100)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def check_override_key(path: list[str], text: str) -> None:
    """An unknown key on the command line is blamed there, with the closest known key.

    Walks the config's dataclasses along ``path``: ``tasks.<name>.`` takes any task name, and a
    mapping-valued key (``encoder.architecture``) any key below it.
    """
    cls: Any = RunConfig
    depth = 0
    while depth < len(path) and cls is not None:
        hints = typing.get_type_hints(cls)
        part = path[depth]
        if part not in hints:
            prefix = ".".join(path[:depth])
            known = [f"{prefix}.{name}" if prefix else name for name in sorted(hints)]
            typed = ".".join(path[: depth + 1])
            close = difflib.get_close_matches(typed, known, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`? " if close else ""
            raise KlueInputError(
                "the command line",
                text,
                f"unknown config key `{typed}`; {hint}(known keys here: {', '.join(known)})",
                kind="override",
            )
        if cls is RunConfig and part == "tasks":
            cls, depth = TaskConfig, depth + 2  # tasks.<any task name>.<a task key>
            continue
        cls = hints[part] if dataclasses.is_dataclass(hints[part]) else None
        depth += 1


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in the plain config data (before validation); unknown keys are blamed on
    the command line (:func:`check_override_key`)."""
    for text in overrides:
        path, value = parse_override(text)
        check_override_key(path, text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _config_error(None, text, f"'{part}' is not a section")
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (safe loader), apply overrides, validate; relative paths resolve to the file."""
    data: dict[str, Any] = {}
    source = str(path) if path else None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise _config_error(p, None, "config file not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise _config_error(p, mark.line + 1 if mark else None, f"invalid YAML: {e}") from None
        if not isinstance(data, dict):
            raise _config_error(p, None, "a config file is a YAML mapping")
        check_config_paths(data, p)
        _resolve_declared_paths(data.get("tasks"), p.parent)
    data = apply_overrides(data, overrides or [])
    _resolve_declared_paths(data.get("tasks"), Path.cwd())  # what the command line set
    cfg = _build(RunConfig, data, "", source)
    _validate(cfg, source)
    if (
        path is not None
        and cfg.data_dir not in (None, SAMPLES_ALIAS)
        and not Path(cfg.data_dir).is_absolute()
    ):
        cfg.data_dir = str((Path(path).parent / cfg.data_dir).resolve())
    return cfg


# Keys that checkpoints of earlier versions saved and that no longer exist (train.num_workers: the
# batch stream never used worker processes). Dropped from a saved config, so those checkpoints load.
RETIRED_KEYS = {"train": ("num_workers",)}


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from :meth:`RunConfig.to_dict` output (e.g. a checkpoint's)."""
    data = dict(data)
    for section, keys in RETIRED_KEYS.items():
        if isinstance(data.get(section), dict):
            data[section] = {k: v for k, v in data[section].items() if k not in keys}
    cfg = _build(RunConfig, data, "", None)
    _validate(cfg, None)
    return cfg


# Task keys naming files (a task's own files; data_dir applies to the KLUE tasks' only).
TASK_PATH_KEYS = ("train", "dev", "ontology")


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(("hub:", "@"))


def _resolve_declared_paths(tasks: Any, base: Path) -> None:
    """Make the relative file paths of tasks declared with ``kind:`` absolute, against ``base``."""
    for settings in (tasks or {}).values() if isinstance(tasks, dict) else ():
        if not isinstance(settings, dict) or settings.get("kind") is None:
            continue
        for key in TASK_PATH_KEYS:
            value = settings.get(key)
            if _is_local(value) and not Path(value).expanduser().is_absolute():
                settings[key] = str((base / value).resolve())


def resolve_path(cfg: RunConfig, value: str, key: str | None = None) -> str:
    """A task file, checked to exist: hub specs and ``@`` sources (``@tasks``) pass through.

    A relative path of a KLUE task resolves against ``data_dir`` (``"@samples"``: the bundled
    samples), or the current folder without one. Tasks declared with ``kind:`` have absolute paths
    by now (:func:`load_config` resolves them against the config file's folder). A missing file is
    an input error naming ``key`` (``tasks.<task>.<split>``) and the rule that produced the path.
    """
    if not _is_local(value):
        return value
    base: Path | None = None
    if cfg.data_dir == SAMPLES_ALIAS:
        from mtl.samples import SAMPLES_DIR

        base, rule = (
            SAMPLES_DIR,
            f"relative to data_dir {SAMPLES_ALIAS!r}, the bundled samples in {SAMPLES_DIR}",
        )
    elif cfg.data_dir:
        base, rule = Path(cfg.data_dir), f"relative to data_dir {cfg.data_dir}"
    else:
        rule = f"relative to the current folder {Path.cwd()} (no data_dir set)"
    path = Path(value).expanduser()
    parts = key.split(".") if key else []
    task = cfg.tasks.get(parts[1]) if len(parts) > 2 and parts[0] == "tasks" else None
    # A declared task's own files (not ``text_from``, which names KLUE tasks' files: data_dir's).
    if task is not None and task.kind is not None and parts[2] in TASK_PATH_KEYS:
        rule = (
            "a task declared with kind: reads its files relative to the config file's folder "
            "(values given on the command line: the current folder); data_dir applies to the KLUE "
            "tasks only"
        )
    elif path.is_absolute():
        rule = "an absolute path"
    elif base is not None:
        path = base / path
    if not path.exists():
        raise KlueInputError(path, key, f"file not found ({value!r}: {rule})", kind="key")
    return str(path)


def load_run_config(path: str | Path) -> RunConfig:
    """The config of a YAML file, or of a checkpoint folder (its saved ``run.json``).

    ``score --config`` uses it to learn the definitions of the tasks declared with ``kind:``.
    """
    from mtl.layout import RUN_FILE

    p = Path(path)
    if p.is_dir():
        run_file = p / RUN_FILE
        if not run_file.is_file():
            raise _config_error(
                p, None, f"a folder given as config must be a checkpoint (no {RUN_FILE} here)"
            )
        try:
            data = json.loads(run_file.read_text(encoding="utf-8"))["config"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise _config_error(run_file, None, f"not a run config ({e})") from None
        return config_from_dict(data)
    return load_config(p)
