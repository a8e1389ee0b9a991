"""``klue-mtl serve``: one process, one joint model in memory, every task over HTTP, a page at ``/``.

Endpoints (README, "Serving"):

* ``POST /v1/predict/{task}`` ``{"inputs": [...]}`` -> ``{"task", "results"}``: ``KlueMultiTask.predict``;
* ``POST /v1/analyze`` ``{"text"}`` -> ``{"text", "results": {task: result}}``: ``KlueMultiTask.analyze``;
* ``GET /v1/tasks``, ``GET /healthz``, ``GET /readyz``, ``GET /openapi.json``, ``GET /``.

No ``/docs`` or ``/redoc``: FastAPI's viewers load their scripts from a CDN, so offline (where this
server usually runs) they are a blank page. ``/openapi.json`` needs nothing; any OpenAPI viewer
reads it.

Every request's inputs are checked with the task's own validation (``records_from_inputs``) in the
request handler, before they join a batch: a malformed item is that request's 422 and never reaches
the model, so it cannot fail anyone else's batch. Accepted inputs go to the :class:`MicroBatcher`,
which runs them in one worker thread with whatever else arrived for the same task.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from mtl.errors import KlueInputError
from mtl.modeling.precision import precision_name
from mtl.serving.api import KlueMultiTask
from mtl.serving.batcher import MicroBatcher, QueueFull
from mtl.tasks.base import input_text

__all__ = ["ServeSettings", "create_app", "task_catalog"]

#: on SIGTERM / Ctrl-C, requests still running get this long before the server exits anyway
SHUTDOWN_SECONDS = 30
ANALYZE_KEY = "analyze"  # the batcher key of analyze requests (no task has this name: see TASK_SHAPES)
STATIC = resources.files("mtl.serving") / "static"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of one server (``klue-mtl serve`` options)."""

    max_batch: int = 32  # inputs per model call
    max_wait_ms: float = 5.0  # how long a request may wait for others of its task
    max_queue: int = 512  # inputs waiting at once; more -> 503
    max_inputs: int = 64  # inputs per request; more -> 413
    max_body_bytes: int = 1_000_000  # request body; more -> 413


#: what each KLUE task (and each declared kind) reads and answers, for GET /v1/tasks and the page
TASK_SHAPES: dict[str, dict[str, Any]] = {
    "ynat": {
        "input": "a headline (string)",
        "output": {"label": "topic", "probs": {"topic": "probability"}},
        "example": "유튜브 내달 2일까지 크리에이터 지원 공간 운영",
    },
    "nli": {
        "input": "[premise, hypothesis]",
        "output": {"label": "entailment | neutral | contradiction", "probs": {"label": "probability"}},
        "example": ["힛걸 진심 최고다 그 어떤 히어로보다 멋지다", "힛걸 진심 최고로 멋지다."],
    },
    "sts": {
        "input": "[sentence1, sentence2]",
        "output": {"score": "the head's raw similarity, about 0-5"},
        "example": ["숙소 위치는 찾기 쉽고 일반적인 숙소입니다.", "숙소는 쉽게 찾을 수 있습니다."],
    },
    "ner": {
        "input": "a sentence (string)",
        "output": {"entities": [{"text": "", "type": "", "start": 0, "end": "exclusive"}], "tags": ["BIO"]},
        "example": "특히 영동고속도로 강릉 방향 문막휴게소에서 5㎞ 구간을 운영한다.",
    },
    "re": {
        "input": '{"sentence", "subject": [start, end INCLUSIVE, type], "object": [start, end, type]}',
        "output": {"label": "relation", "probs": {"relation": "probability"}},
        "example": {
            "sentence": "〈Something〉는 조지 해리슨이 쓰고 비틀즈가 1969년 앨범 《Abbey Road》에 담은 노래다.",
            "subject": [24, 26, "ORG"],
            "object": [13, 18, "PER"],
        },
    },
    "dp": {
        "input": 'a sentence, a list of eojeols, or {"words", "pos"}',
        "output": {"words": ["eojeol"], "heads": ["1-based, 0 = root"], "deprels": ["label"]},
        "example": "해당 그림을 보면 디즈니 공주들이 똑같이 재연했다.",
    },
    "mrc": {
        "input": '{"question", "context"}',
        "output": {"answer": "text ('' = unanswerable)", "start": "or null", "end": "exclusive, or null"},
        "example": {
            "question": "비틀즈가 1969년에 낸 앨범은?",
            "context": "〈Something〉는 조지 해리슨이 쓰고 비틀즈가 1969년 앨범 《Abbey Road》에 담은 노래다.",
        },
    },
    "wos": {
        "input": "the turns of one dialogue: [user, system, user, ...]",
        "output": {"turn": "index of the last user turn", "state": ["domain-slot-value"]},
        "example": [
            "서울 중앙에 있는 박물관을 찾아주세요",
            "문화역서울 284은 어떠신가요?",
            "주소 알려주세요",
        ],
    },
}
KIND_SHAPES: dict[str, dict[str, Any]] = {
    "single_sentence_classification": {**TASK_SHAPES["ynat"], "example": "한 문장"},
    "sentence_pair_classification": {**TASK_SHAPES["nli"], "example": ["첫 문장", "둘째 문장"]},
    "sentence_pair_regression": {**TASK_SHAPES["sts"], "example": ["첫 문장", "둘째 문장"]},
    "token_tagging": {
        "input": "a list of tokens, or a text split at spaces",
        "output": {"tokens": ["token"], "tags": ["IOB2 tag per token"]},
        "example": "한 문장 의 토큰",
    },
}


def task_catalog(model: KlueMultiTask) -> list[dict[str, Any]]:
    """Each task of ``model`` with its head, input and output shapes, an example input, and whether
    ``/v1/analyze`` answers it."""
    analyzed = set(model.analyze_tasks())
    out = []
    for name in model.tasks:
        kind = getattr(model.task(name), "kind_name", None)
        shape = TASK_SHAPES.get(name) or KIND_SHAPES.get(
            kind or "", {"input": "see the README", "output": {}}
        )
        out.append(
            {
                "name": name,
                "head": model.model.head_specs[name]["kind"],
                "declared_kind": kind,
                "analyze": name in analyzed,
                **shape,
            }
        )
    return out


# -- request and response bodies (they make the OpenAPI docs) ---------------------------------------
class PredictRequest(BaseModel):
    """The inputs of one task, in the Python API's shapes (``GET /v1/tasks`` lists them)."""

    inputs: list[Any] = Field(..., examples=[["유튜브 내달 2일까지 크리에이터 지원 공간 운영"]])


class PredictResponse(BaseModel):
    task: str
    results: list[dict[str, Any]]


class AnalyzeRequest(BaseModel):
    text: str = Field(..., examples=["특히 영동고속도로 강릉 방향 문막휴게소에서 5㎞ 구간을 운영한다."])


class AnalyzeResponse(BaseModel):
    text: str
    results: dict[str, dict[str, Any]]


class ErrorResponse(BaseModel):
    detail: str
    task: str | None = None
    item: int | None = None


class _JSON(JSONResponse):
    """JSON with Korean text as is (``ensure_ascii=False``) and numpy scalars as plain numbers."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, whether announced or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _JSON({"detail": f"request body over {self.limit} bytes"}, status_code=413)(
                scope, receive, send
            )
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # chunked upload without a length: stop reading at the limit
                    raise HTTPException(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


# -- the application --------------------------------------------------------------------------------
def create_app(
    model: KlueMultiTask | None = None,
    *,
    checkpoint: str | Path | None = None,
    settings: ServeSettings | None = None,
    device: str = "cpu",
) -> FastAPI:
    """The FastAPI application serving ``model`` (or the model loaded from ``checkpoint`` at startup).

    With a ``checkpoint`` the server starts answering at once: ``/healthz`` is 200, ``/readyz`` and
    the task endpoints are 503 until the model has loaded (in a background thread).
    """
    if (model is None) == (checkpoint is None):
        raise ValueError("give a loaded model or a checkpoint to load, not both")
    settings = settings or ServeSettings()
    state: dict[str, Any] = {"model": model, "error": None, "started": time.time()}

    def run_batch(key: str, items: list[Any]) -> list[Any]:
        m: KlueMultiTask = state["model"]
        if key == ANALYZE_KEY:
            return m.analyze(items)
        return m.predict(key, items)

    batcher = MicroBatcher(
        run_batch,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
    )

    def load() -> None:
        try:
            # The run's own precision on this device (bf16/fp16 autocast on a GPU), as predict and evaluate.
            state["model"] = KlueMultiTask.from_pretrained(checkpoint, device=device, dtype="auto")  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - /readyz reports it
            state["error"] = f"{type(err).__name__}: {err}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        if state["model"] is None:
            threading.Thread(target=load, name="klue-mtl-load", daemon=True).start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="klue-mtl",
        summary="One joint KLUE model answering every task",
        description="The eight KLUE tasks (and declared ones) from one RoBERTa encoder in memory. "
        "Inputs and results have the shapes of the Python API (`KlueMultiTask.predict`).",
        version="1",
        lifespan=lifespan,
        default_response_class=_JSON,
        docs_url=None,  # the viewers' scripts come from a CDN (module doc)
        redoc_url=None,
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.state.batcher = batcher
    app.state.settings = settings
    app.state.serving = state

    def ready_model() -> KlueMultiTask:
        if state["model"] is None:
            detail = (
                f"the model failed to load: {state['error']}" if state["error"] else "the model is loading"
            )
            raise HTTPException(503, detail)
        return state["model"]

    def overloaded(err: QueueFull) -> _JSON:
        return _JSON({"detail": f"overloaded: {err}"}, status_code=503, headers={"Retry-After": "1"})

    def bad_item(err: KlueInputError, task: str) -> _JSON:
        item = int(err.record) if err.kind == "item" and str(err.record).isdigit() else None
        return _JSON({"detail": str(err), "task": task, "item": item}, status_code=422)

    errors = {
        404: {"model": ErrorResponse, "description": "unknown task (the message lists the tasks)"},
        413: {"model": ErrorResponse, "description": "body or input count over the limits"},
        422: {"model": ErrorResponse, "description": "a malformed item: its index and the reason"},
        503: {"model": ErrorResponse, "description": "loading, or overloaded (retry)"},
    }

    @app.post("/v1/predict/{task}", response_model=PredictResponse, responses=errors, tags=["tasks"])
    async def predict(task: str, body: PredictRequest) -> Response:
        """Results of ``KlueMultiTask.predict(task, inputs)``, batched with concurrent requests of the task."""
        m = ready_model()
        if task not in m.tasks:
            return _JSON(
                {"detail": f"unknown task {task!r}; this model serves {', '.join(m.tasks)}", "task": task},
                status_code=404,
            )
        if len(body.inputs) > settings.max_inputs:
            return _JSON(
                {"detail": f"{len(body.inputs)} inputs; at most {settings.max_inputs} per request"},
                status_code=413,
            )
        try:
            m.task(task).records_from_inputs(body.inputs)  # the item's own error, before any batch
        except KlueInputError as err:
            return bad_item(err, task)
        if not body.inputs:
            return _JSON({"task": task, "results": []})
        try:
            results = await batcher.submit(task, body.inputs)
        except QueueFull as err:
            return overloaded(err)
        return _JSON({"task": task, "results": results})

    @app.post("/v1/analyze", response_model=AnalyzeResponse, responses=errors, tags=["tasks"])
    async def analyze(body: AnalyzeRequest) -> Response:
        """Every single-sentence task (YNAT, NER, DP, declared ones) on one text from one encoder pass."""
        m = ready_model()
        try:
            input_text("analyze", 0, body.text, "the text")
            for name in m.analyze_tasks():
                m.task(name).records_from_inputs([body.text])
        except KlueInputError as err:
            return bad_item(err, "analyze")
        try:
            (results,) = await batcher.submit(ANALYZE_KEY, [body.text])
        except QueueFull as err:
            return overloaded(err)
        return _JSON({"text": body.text, "results": results})

    @app.get("/v1/tasks", tags=["service"])
    async def tasks() -> Response:
        """The tasks this model serves, with their input and output shapes and an example input."""
        m = ready_model()
        return _JSON({"tasks": task_catalog(m), "analyze": m.analyze_tasks(), "limits": asdict(settings)})

    @app.get("/healthz", tags=["service"])
    async def healthz() -> Response:
        """Liveness: the process answers (the model may still be loading)."""
        return _JSON(
            {
                "status": "ok",
                "uptime_seconds": round(time.time() - state["started"], 1),
                "waiting_inputs": batcher.waiting,
                "batching": batcher.stats.to_dict(),
            }
        )

    @app.get("/readyz", tags=["service"], responses={503: {"model": ErrorResponse}})
    async def readyz() -> Response:
        """Readiness: 200 once the model is loaded, 503 before (or when loading failed); where it runs,
        and in which precision."""
        m = ready_model()
        return _JSON(
            {
                "status": "ready",
                "tasks": m.tasks,
                "source": str(m.source) if m.source else None,
                "device": str(m.device),
                "precision": precision_name(m.dtype),
            }
        )

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def serve(
    checkpoint: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    device: str = "cpu",
) -> None:
    """Run the server until interrupted (what ``klue-mtl serve`` does)."""
    import uvicorn

    app = create_app(checkpoint=checkpoint, settings=settings, device=device)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )


class ServerThread:
    """A uvicorn server on a free loopback port in a background thread (tests and the bench).

    ``with ServerThread(app) as url: ...`` starts it, waits until it listens, and stops it after.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1") -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="klue-mtl-server", daemon=True)
        self.url = ""

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended before it listened (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start listening within 60 s")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=SHUTDOWN_SECONDS + 10)
        if self.thread.is_alive() and exc_type is None:
            raise RuntimeError(f"the server thread did not stop within {SHUTDOWN_SECONDS + 10} s")


def cmd_serve(args: Any) -> int:
    """``klue-mtl serve``: check the checkpoint folder, then serve it until interrupted."""
    folder = Path(args.checkpoint)
    if not (folder / "config.json").is_file():
        raise KlueInputError(folder, None, "not a checkpoint folder (no config.json)")
    settings = ServeSettings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_inputs=args.max_inputs,
        max_body_bytes=args.max_body_bytes,
    )
    serve(folder, host=args.host, port=args.port, settings=settings, device=args.device)
    return 0
