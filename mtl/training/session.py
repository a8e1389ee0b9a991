"""Everything a training run sets up before its first step, shared by both engines.

Config -> output folder check -> tokenizer -> tasks -> every file read and featurized -> model ->
batch stream -> optimizer and schedule. A malformed input stops here, before any training time is
spent. The engines (mtl/training/loop.py, mtl/training/trainer.py) only differ in how they step.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from transformers import set_seed

from heads import build_head
from mtl.batching.prepare import TaskData, add_task_tokens, prepare, setup_task
from mtl.batching.stream import MultiTaskStream
from mtl.config import RunConfig, check_contained_path
from mtl.errors import KlueInputError
from mtl.evaluation.inference import evaluate_split
from mtl.layout import FEATURES_CACHE_DIR, LAST, STATE_DIR
from mtl.modeling.encoder import build_encoder, pretrained_lm_head, set_attention
from mtl.modeling.model import MultiTaskModel
from mtl.modeling.precision import check_launcher_precision, enable_tf32, pick_autocast
from mtl.modeling.tokenizer import encoder_tokenizer
from mtl.tasks.base import Task
from mtl.tracking.reporters import check_reporters
from mtl.training.budget import build_sampler
from mtl.training.checkpoint import (
    TrainingState,
    capture_rng,
    current_checkpoint,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from mtl.training.optim import build_optimizer, build_scheduler
from mtl.training.progress import is_terminal
from mtl.training.strategies import Weighting, build_weighting, check_strategies


@dataclass
class Session:
    """A prepared run."""

    cfg: RunConfig
    output_dir: Path
    tokenizer: Any
    data: dict[str, TaskData]
    model: MultiTaskModel
    device: torch.device
    autocast_dtype: torch.dtype | None
    rank: int = 0
    world_size: int = 1
    resume_state: TrainingState | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    last_predictions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: the ``train.max_steps`` the batch stream was planned for: a resume that raises max_steps keeps
    #: the run's sampling weights and anneal schedule (they are solved over the planned steps)
    stream_steps: int | None = None
    #: on --resume: the ``train.max_steps`` the checkpoint was saved with (a larger one stretches the
    #: learning-rate schedule, see :meth:`mtl.training.run.EngineRun.resume_line`)
    resumed_max_steps: int | None = None
    #: (step, folder) of the checkpoint written last: a later one of the same step shares its weights
    saved_at: tuple[int, Path] | None = None

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes checkpoints, logs and the scoreboard."""
        return self.rank == 0

    def task_resources(self) -> dict[str, Any]:
        return {name: td.task.resources for name, td in self.data.items()}

    def train_sizes(self) -> dict[str, int]:
        """Training units (features) of every task, in the order the sampler lists them."""
        return {name: len(td.train.features) for name, td in self.data.items()}  # type: ignore[union-attr]

    def make_stream(self) -> MultiTaskStream:
        t = self.cfg.train
        planned = self.stream_steps or t.max_steps
        cfg = self.cfg
        if planned != t.max_steps:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(t, max_steps=planned))
        return MultiTaskStream(
            self.data,
            sampler=build_sampler(cfg, self.train_sizes()),
            seed=t.seed,
            rank=self.rank,
            world_size=self.world_size,
            device=self.device,
            tasks_per_step=t.tasks_per_step,
        )

    @functools.cached_property
    def weighting(self) -> Weighting:
        """The run's loss weighting (``train.weighting``), built once: its learned values are optimised."""
        t = self.cfg.train
        weights = {name: self.cfg.tasks[name].loss_weight for name in self.data}
        return build_weighting(t.weighting, weights, t.dwa_window).to(self.device)

    def make_optimizer(self, model: torch.nn.Module | None = None) -> tuple[Any, Any]:
        strategy = list(self.weighting.parameters()) if model is None else []
        optimizer = build_optimizer(model or self.model, self.cfg.train, self.cfg, strategy_params=strategy)
        return optimizer, build_scheduler(optimizer, self.cfg.train)

    def evaluate(
        self, *, progress: bool = True, tasks: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Official dev metrics of every task (or of ``tasks``) that has a dev split.

        The predictions are kept in ``last_predictions`` (confusion matrices of the final evaluation).
        """
        results = {}
        for name, td in self.data.items():
            if td.dev is None or (tasks is not None and name not in tasks):
                continue
            predictions, metrics = evaluate_split(
                self.model,
                td.task,
                td.dev,
                batch_size=td.task.settings.eval_batch_size,
                device=self.device,
                progress=progress,
                autocast_dtype=self.autocast_dtype,
            )
            results[name] = metrics
            self.last_predictions[name] = predictions
        return results

    def selection_score(self, results: dict[str, dict[str, float]]) -> float:
        """The number best-checkpoint selection maximises."""
        sel = self.cfg.train.select_metric
        if sel == "average":
            mains = [results[n][td.task.main_metric] for n, td in self.data.items() if n in results]
            return sum(mains) / max(len(mains), 1)
        task, metric = sel.split(".")
        return results[task][metric]

    def save(self, name: str, state: TrainingState | None, step: int | None = None) -> Path | None:
        """Write checkpoint ``name`` under the output folder (rank 0; None on the other ranks).

        ``step``: the optimizer step of the weights. Checkpoints of one step (``last``, ``best`` and the
        ``best-<task>`` of every task that peaked there) share one copy of the weights on disk.
        Every rank calls it: under DDP the others wait in a barrier until rank 0 has written the
        checkpoint (under the process group's ``train.ddp_timeout``), so no rank runs ahead into the
        next step's collectives meanwhile.
        """
        path = None
        if self.is_main:
            same = (
                self.saved_at[1] if self.saved_at and step is not None and self.saved_at[0] == step else None
            )
            path = save_checkpoint(
                self.output_dir / name,
                self.model,
                self.tokenizer,
                self.task_resources(),
                self.cfg.to_dict(),
                state,
                same_weights_as=same,
            )
            self.saved_at = (step, path) if step is not None else None
        if self.world_size > 1:
            dist.barrier()
        return path

    def training_state(
        self,
        step: int,
        optimizer: Any,
        scheduler: Any,
        stream: MultiTaskStream,
        extra: dict,
        scaler: torch.amp.GradScaler | None = None,
    ) -> TrainingState:
        position = stream.state_dict()
        # Every rank's random state and masked-LM mask generator, in one exchange (None off rank 0).
        ranks = self.gather_to_main((capture_rng(), position.get("rng")))
        return TrainingState(
            step=step,
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            # planned_steps: what the stream's weights and anneal were solved over (see stream_steps)
            sampler={
                **position,
                "rng": [masks for _, masks in ranks] if ranks is not None else None,
                "planned_steps": self.stream_steps or self.cfg.train.max_steps,
            },
            rng=[state for state, _ in ranks] if ranks is not None else None,
            extra=extra,
            scaler=scaler.state_dict() if scaler is not None else None,
        )

    def gather_to_main(self, state: Any) -> list[Any] | None:
        """Every rank's ``state``, in rank order, on rank 0 (None on the others, which save nothing).

        For the random states: each rank resumes from its own, since their draws differ (dropout and
        masked LM's masks fall on shards of different shapes).
        """
        if self.world_size == 1:
            return [state]
        states: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(state, states, dst=0)
        return states


def init_distributed(timeout: int = 3600) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun or accelerate.

    ``timeout`` (seconds, ``train.ddp_timeout``) bounds every collective: generous, because the other
    ranks wait in a barrier while rank 0 writes a checkpoint (gigabytes for roberta-large).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(seconds=timeout)
        )
        # Left when the process exits, however it ends (finished, stopped, failed): once per process,
        # because joining again under torchrun's store would wait forever.
        atexit.register(close_distributed)
    if world > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def close_distributed() -> None:
    """Leave the process group, if this process is in one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def pick_device(rank: int) -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def check_writable(directory: Path) -> None:
    """The output folder must be creatable and writable before any work starts."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # One probe per process: DDP ranks check the same folder at the same time.
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise KlueInputError(directory, None, f"output folder is not writable ({e.strerror})") from None


def check_heads_fit(model: MultiTaskModel, tasks: list[Task], source: str | Path | None) -> None:
    """Each task's head must be the kind its task plugs into and sized for the task's vocabularies.

    ``source`` (the checkpoint the model came from, if any) is named in the error.
    """
    for task in tasks:
        spec = model.head_specs[task.name]
        if spec["kind"] != task.head_kind or spec["args"] != task.model_head_args():
            raise KlueInputError(
                source,
                None,
                f"the {task.name} head ({spec['kind']} {spec['args']}) does not fit the task "
                f"({task.head_kind} {task.model_head_args()})",
            )


def start_lm_heads(model: MultiTaskModel, name: str, vocab_size: int) -> None:
    """Masked-LM heads start from the pretrained encoder's own LM head, where it has one."""
    heads = [t for t, spec in model.head_specs.items() if spec["kind"] == "masked_lm"]
    if not heads:
        return
    state = pretrained_lm_head(name, vocab_size)
    if state is None:
        print(f"note: {name} has no masked-LM head; the {', '.join(heads)} head starts at random")
        return
    for task in heads:
        model.heads[task].load_state_dict(state)


def build_model(encoder: Any, tasks: list[Task]) -> MultiTaskModel:
    """The joint model with one head per task; a bad ``tasks.<t>.head`` argument is a config error."""
    specs = {t.name: {"kind": t.head_kind, "args": t.model_head_args()} for t in tasks}
    for t in tasks:
        try:
            build_head(t.head_kind, encoder.config.hidden_size, **specs[t.name]["args"])
        except ValueError as e:
            raise KlueInputError(None, f"tasks.{t.name}.head", str(e), kind="key") from None
    return MultiTaskModel(encoder, specs)


def resolve_cache_dir(cfg: RunConfig, output_dir: Path) -> Path:
    """The featurization cache folder: relative ``cache_dir`` values resolve inside the output folder.

    An absolute path is only possible from a command-line override (config files are checked by
    :func:`mtl.config.check_config_paths`); a relative one may not climb out of the output folder.
    """
    if not cfg.cache_dir:
        return output_dir / FEATURES_CACHE_DIR
    if Path(cfg.cache_dir).is_absolute():
        return Path(cfg.cache_dir)
    check_contained_path(cfg.cache_dir, "cache_dir", None)
    return output_dir / cfg.cache_dir


def build_session(
    cfg: RunConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
    init_from: str | Path | None = None,
    only_tasks: list[str] | None = None,
    progress: bool = True,
) -> Session:
    """Prepare a run; ``init_from`` starts from a checkpoint's encoder and heads (fine-tuning)."""
    rank, world = init_distributed(cfg.train.ddp_timeout)
    set_seed(cfg.train.seed)
    output_dir = Path(output_dir)
    check_writable(output_dir)
    check_reporters(cfg.train.report_to)  # before any data is read: a missing package is a quick exit
    check_strategies(cfg, world)
    cache_dir = resolve_cache_dir(cfg, output_dir)
    device = pick_device(rank)
    autocast_dtype = pick_autocast(cfg.train.precision, device)
    check_launcher_precision(cfg.train.precision, autocast_dtype)
    enable_tf32(device)

    source = current_checkpoint(output_dir / LAST) if resume else (Path(init_from) if init_from else None)
    resume_state = None
    stream_steps = saved_steps = None
    if resume and not (source / STATE_DIR).is_dir():  # type: ignore[operator]
        raise KlueInputError(source, None, "nothing to resume: no checkpoint with training state here")
    if source is not None:
        model, tokenizer, resources, run = load_checkpoint(source)
        tasks = only_tasks or list(cfg.tasks)
        missing = [t for t in tasks if t not in model.tasks]
        if missing:
            raise KlueInputError(source, None, f"the checkpoint has no head for task(s) {', '.join(missing)}")
        model.keep_tasks(tasks)
        if resume:
            resume_state = load_training_state(source)
            saved_steps = (run.get("config") or {}).get("train", {}).get("max_steps")
            stream_steps = resume_state.sampler.get("planned_steps", saved_steps)
    else:
        check_hub_sources(cfg)
        tokenizer = encoder_tokenizer(cfg.encoder)
        tasks = only_tasks or list(cfg.tasks)
        task_objs = [setup_task(name, cfg, tokenizer) for name in tasks]
        add_task_tokens(tokenizer, task_objs)
        # prepare() sets the tasks up again from these, instead of rebuilding vocabularies (WoS ontology).
        resources = {t.name: t.resources for t in task_objs}
        encoder = build_encoder(cfg.encoder, len(tokenizer))
        model = build_model(encoder, task_objs)
        if not cfg.encoder.random_init:
            start_lm_heads(model, cfg.encoder.name, len(tokenizer))

    # Featurization bars only on a terminal: elsewhere their carriage returns pile up in the log.
    show = progress and rank == 0 and is_terminal(sys.stderr)
    data = prepare(cfg, tokenizer, tasks=tasks, resources=resources, cache_dir=cache_dir, progress=show)
    check_heads_fit(model, [td.task for td in data.values()], source)
    set_attention(model.encoder, cfg.encoder.attn_implementation)
    model.to(device)
    return Session(
        cfg,
        output_dir,
        tokenizer,
        data,
        model,
        device,
        autocast_dtype,
        rank,
        world,
        resume_state,
        stream_steps=stream_steps,
        resumed_max_steps=saved_steps,
    )


def check_hub_sources(cfg: RunConfig) -> None:
    """Fail fast (exit 2) when the encoder or tokenizer is a hub id that cannot be reached."""
    from mtl.hubcheck import check_model_source
    from mtl.modeling.tokenizer import OFFLINE_NAMES

    if not cfg.encoder.random_init:
        check_model_source(cfg.encoder.name, "encoder.name")
    tokenizer = cfg.encoder.tokenizer or cfg.encoder.name
    if tokenizer not in OFFLINE_NAMES and (cfg.encoder.random_init or tokenizer != cfg.encoder.name):
        check_model_source(tokenizer, "encoder.tokenizer" if cfg.encoder.tokenizer else "encoder.name")
