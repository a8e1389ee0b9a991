"""`klue-mtl serve`: a real server on a free loopback port answers like `KlueMultiTask.predict`.

Covers the acceptance of issue 21 except the browser (tests/test_serving_browser.py): every task's
request equals the Python API, `analyze` equals the separate predictions from one encoder pass,
bad input gets its status code without hurting anyone else, the micro-batcher groups concurrent
requests and answers 503 when full, and a bounded mixed load run ends with no failed good request.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from mtl.cli.main import main  # noqa: E402
from mtl.serving.batcher import MicroBatcher, QueueFull  # noqa: E402
from mtl.serving.server import TASK_SHAPES, ServerThread, ServeSettings, create_app  # noqa: E402

ROOT = Path(__file__).parent.parent
DEMO = str(ROOT / "configs" / "demo.yaml")
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
]
TASK_NAMES = ("ynat", "nli", "sts", "ner", "re", "dp", "mrc", "wos")

#: two inputs per task in the API's shapes (the README's examples and one more)
SONG = "〈Something〉는 조지 해리슨이 쓰고 비틀즈가 1969년 앨범 《Abbey Road》에 담은 노래다."
INPUTS: dict[str, list[Any]] = {
    "ynat": ["유튜브 내달 2일까지 크리에이터 지원 공간 운영", "코로나19 신규 확진자 다시 늘어"],
    "nli": [
        ["힛걸 진심 최고다 그 어떤 히어로보다 멋지다", "힛걸 진심 최고로 멋지다."],
        ["비가 온다.", "날씨가 맑다."],
    ],
    "sts": [
        ["숙소 위치는 찾기 쉽고 일반적인 숙소입니다.", "숙소는 쉽게 찾을 수 있습니다."],
        ["좋아요", "싫어요"],
    ],
    "ner": [
        "특히 영동고속도로 강릉 방향 문막휴게소에서 5㎞ 구간을 운영한다.",
        "이순신은 1545년 서울에서 태어났다.",
    ],
    "re": [
        {"sentence": SONG, "subject": [24, 26, "ORG"], "object": [13, 18, "PER"]},
        {"sentence": SONG, "subject": {"start": 13, "end": 18, "type": "PER"}, "object": [24, 26, "ORG"]},
    ],
    "dp": [
        "해당 그림을 보면 디즈니 공주들이 똑같이 재연했다.",
        {"words": ["저", "거실은", "무척", "넓었다."], "pos": ["MMD", "NNG+JX", "MAG", "VA+EP+EF+SF"]},
    ],
    "mrc": [
        {"question": "비틀즈가 1969년에 낸 앨범은?", "context": SONG},
        {"question": "누가 썼나?", "context": SONG},
    ],
    "wos": [
        ["서울 중앙에 있는 박물관을 찾아주세요", "문화역서울 284은 어떠신가요?", "주소 알려주세요"],
        ["저렴한 숙소를 찾고 있어요"],
    ],
}
#: one malformed request per task, and the words its 422 must contain
BAD: dict[str, tuple[list[Any], str]] = {
    "ynat": (["좋은 제목", 3], "item 1"),
    "nli": ([["전제만 있다"]], "item 0"),
    "sts": ([["문장", ""]], "item 0"),
    "ner": (["", "문장"], "item 0"),
    "re": (
        [{"sentence": "짧다", "subject": [0, 0, "PER"], "object": [5, 9, "ORG"]}],
        "not inside the sentence",
    ),
    "dp": ([{"words": ["a", "b"], "pos": ["NNG"]}], "'pos' must be a list of 2"),
    "mrc": ([{"question": "무엇?"}], "item 0"),
    "wos": ([[]], "item 0"),
}


def json_roundtrip(value: Any) -> Any:
    """What a result looks like after JSON (tuples become lists; floats round-trip exactly)."""
    return json.loads(json.dumps(value, ensure_ascii=False))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A joint checkpoint of all eight tasks trained briefly from the demo config."""
    out = tmp_path_factory.mktemp("serve-joint")
    args = ["train", "--config", DEMO, "--output", str(out), *TINY, "train.max_steps=8"]
    assert main([*args, f"cache_dir={out / 'cache'}"]) == 0
    return out / "best"


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> Any:
    from mtl import KlueMultiTask

    return KlueMultiTask.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def server(model: Any) -> Any:
    """A server on a free loopback port with small limits (to test them cheaply)."""
    settings = ServeSettings(max_batch=16, max_wait_ms=20, max_queue=256, max_inputs=8, max_body_bytes=20_000)
    app = create_app(model, settings=settings)
    with ServerThread(app) as url:
        assert url.startswith("http://127.0.0.1:")
        yield url, app


@pytest.fixture()
def client(server: Any) -> Any:
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


# -- every task equals the Python API ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_request_equals_the_python_api(client: Any, model: Any, task: str) -> None:
    response = client.post(f"/v1/predict/{task}", json={"inputs": INPUTS[task]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == task
    assert body["results"] == json_roundtrip(model.predict(task, INPUTS[task]))


@pytest.mark.slow
def test_analyze_equals_the_three_separate_predictions_from_one_encoder_pass(client: Any, model: Any) -> None:
    text = INPUTS["ner"][0]
    calls: list[int] = []
    hook = model.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        response = client.post("/v1/analyze", json={"text": text})
    finally:
        hook.remove()
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert set(results) == {"ynat", "ner", "dp"}
    for task in ("ynat", "ner", "dp"):
        assert results[task] == json_roundtrip(model.predict(task, [text])[0]), task
    assert len(calls) == 1  # YNAT, NER and DP read the same hidden states


@pytest.mark.slow
def test_python_analyze_matches_separate_predictions_and_falls_back_when_ids_differ(model: Any) -> None:
    texts = [INPUTS["ner"][0], INPUTS["ynat"][0], "짧은 문장"]
    calls: list[int] = []
    hook = model.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        shared = model.analyze(texts)
        assert len(calls) == 1
        # A text longer than YNAT's max_length is truncated for YNAT only: its ids differ, so YNAT
        # takes its own pass and every result still equals the separate prediction.
        long_text = " ".join(["영동고속도로 강릉 방향"] * 80)
        calls.clear()
        apart = model.analyze([long_text])
        assert len(calls) >= 2
    finally:
        hook.remove()
    for task in ("ynat", "ner", "dp"):
        assert [r[task] for r in shared] == model.predict(task, texts), task
        assert apart[0][task] == model.predict(task, [long_text])[0], task


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_malformed_item_is_a_422_naming_it_and_the_server_keeps_serving(client: Any, task: str) -> None:
    inputs, words = BAD[task]
    response = client.post(f"/v1/predict/{task}", json={"inputs": inputs})
    assert response.status_code == 422, response.text
    body = response.json()
    assert words in body["detail"] and body["detail"].startswith(f"{task} inputs, item ")
    assert body["item"] == int(body["detail"].split("item ")[1].split(":")[0])
    assert client.post(f"/v1/predict/{task}", json={"inputs": INPUTS[task][:1]}).status_code == 200


@pytest.mark.slow
def test_unknown_task_limits_and_malformed_bodies(client: Any) -> None:
    r = client.post("/v1/predict/nsmc", json={"inputs": ["좋다"]})
    assert r.status_code == 404 and all(t in r.json()["detail"] for t in TASK_NAMES)
    r = client.post("/v1/predict/ynat", json={"inputs": ["제목"] * 9})  # max_inputs=8
    assert r.status_code == 413 and "at most 8" in r.json()["detail"]
    r = client.post("/v1/predict/ynat", json={"inputs": ["가" * 30_000]})  # max_body_bytes=20,000
    assert r.status_code == 413
    chunked = (b'{"inputs": ["' + "나".encode() * 10_000 + b'"]}' for _ in range(1))  # no Content-Length
    r = client.post("/v1/predict/ynat", content=chunked, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/v1/predict/ynat", json={"inputs": "not a list"}).status_code == 422
    assert (
        client.post(
            "/v1/predict/ynat", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    r = client.post("/v1/analyze", json={"text": "   "})
    assert r.status_code == 422 and "analyze inputs, item 0" in r.json()["detail"]
    assert client.post("/v1/predict/ynat", json={"inputs": []}).json() == {"task": "ynat", "results": []}
    assert client.get("/readyz").status_code == 200  # still serving


@pytest.mark.slow
def test_tasks_health_docs_and_page(client: Any) -> None:
    tasks = client.get("/v1/tasks").json()
    assert [t["name"] for t in tasks["tasks"]] == list(TASK_NAMES)
    assert tasks["analyze"] == ["ynat", "ner", "dp"]
    for t in tasks["tasks"]:
        assert t["input"] == TASK_SHAPES[t["name"]]["input"] and t["example"]
    # every listed example is a valid request
    for t in tasks["tasks"]:
        assert client.post(f"/v1/predict/{t['name']}", json={"inputs": [t["example"]]}).status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["tasks"] == list(TASK_NAMES)
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict/{task}", "/v1/analyze", "/v1/tasks", "/healthz", "/readyz"} <= set(spec["paths"])
    # no HTML viewer: FastAPI's pull their scripts from a CDN, a blank page offline
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        text = client.get(asset).text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def test_readyz_is_503_until_the_model_has_loaded(tmp_path: Path) -> None:
    app = create_app(checkpoint=tmp_path / "no-such-checkpoint")
    with ServerThread(app) as url, httpx.Client(base_url=url) as c:
        assert c.get("/healthz").status_code == 200
        for _ in range(100):
            r = c.get("/readyz")
            if "failed" in r.json()["detail"]:
                break
        assert r.status_code == 503 and "failed to load" in r.json()["detail"]
        assert c.post("/v1/predict/ynat", json={"inputs": ["x"]}).status_code == 503


def test_the_server_runs_the_model_in_the_runs_own_precision(checkpoint: Path, tmp_path: Path) -> None:
    """A run trained in fp16 is served under fp16 autocast, as predict and evaluate run it (the
    server used to load every checkpoint in fp32: several times slower on a T4)."""
    from mtl.layout import RUN_FILE

    fp16 = tmp_path / "fp16"
    shutil.copytree(checkpoint, fp16)
    run = json.loads((fp16 / RUN_FILE).read_text(encoding="utf-8"))
    run["config"]["train"]["precision"] = "fp16"
    (fp16 / RUN_FILE).write_text(json.dumps(run), encoding="utf-8")
    app = create_app(checkpoint=fp16)
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(600):
            r = c.get("/readyz")
            if r.status_code == 200 or "failed" in r.text:
                break
            time.sleep(0.05)
        assert r.status_code == 200, r.text
        assert r.json()["precision"] == "fp16" and r.json()["device"] == "cpu"
        assert c.post("/v1/predict/ynat", json={"inputs": ["삼성전자 주가 상승"]}).status_code == 200


# -- the micro-batcher -------------------------------------------------------------------------------
def test_the_batcher_groups_concurrent_requests_per_key_and_keeps_order() -> None:
    calls: list[tuple[str, list[Any]]] = []

    def runner(key: str, items: list[Any]) -> list[Any]:
        calls.append((key, list(items)))
        return [f"{key}:{x}" for x in items]

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(runner, max_batch=8, max_wait_ms=50, max_queue=100)
        batcher.start()
        try:
            jobs = [batcher.submit("a", [i]) for i in range(6)] + [batcher.submit("b", [10, 11])]
            return await asyncio.gather(*jobs)
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert results == [[f"a:{i}"] for i in range(6)] + [["b:10", "b:11"]]
    assert sorted(calls) == [("a", [0, 1, 2, 3, 4, 5]), ("b", [10, 11])]  # two model calls, not seven


def test_the_batcher_caps_batches_refuses_when_full_and_isolates_a_failing_request() -> None:
    calls: list[list[Any]] = []

    def runner(key: str, items: list[Any]) -> list[Any]:
        calls.append(list(items))
        if "boom" in items:
            raise ValueError("boom")
        return items

    async def scenario() -> tuple[list[Any], bool]:
        batcher = MicroBatcher(runner, max_batch=3, max_wait_ms=30, max_queue=5)
        batcher.start()
        try:
            jobs = [asyncio.ensure_future(batcher.submit("k", [x])) for x in ("x", "boom", "y", "z")]
            await asyncio.sleep(0)
            full = False
            try:
                await batcher.submit("k", [1, 2])  # 4 waiting + 2 > 5
            except QueueFull:
                full = True
            return await asyncio.gather(*jobs, return_exceptions=True), full
        finally:
            await batcher.stop()

    results, full = asyncio.run(scenario())
    assert full
    assert results[0] == ["x"] and results[2] == ["y"] and results[3] == ["z"]
    assert isinstance(results[1], ValueError)
    assert max(len(c) for c in calls) <= 3


# -- load ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_bounded_mixed_load_run_fails_no_good_request(server: Any) -> None:
    from mtl.bench.serving import load_run

    url, app = server
    report = load_run(url, requests=400, concurrency=16, seed=1)
    assert report["requests"] == 400
    assert report["good"] + report["bad"] == 400 and report["bad"] > 0
    assert report["failed_good"] == 0, report["failures"]
    assert report["bad_not_4xx"] == 0, report["failures"]
    assert report["p50_ms"] <= report["p99_ms"] and report["requests_per_second"] > 0
    assert report["rss_first_half_bytes"] > 0 and report["rss_second_half_bytes"] > 0
    assert app.state.batcher.stats.batches < app.state.batcher.stats.requests  # requests were grouped
