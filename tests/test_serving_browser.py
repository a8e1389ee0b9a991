"""The page at `/` in a real browser: headless Chromium from the distribution, driven by Playwright.

The test starts a server on a free loopback port, types a sentence, presses Analyze, and checks
what the page drew against the API's own JSON for that sentence: every NER entity highlighted with
its type, one SVG arc per eojeol from its head with its relation label. It keeps a screenshot in the
test's tmp folder (and in ``$KLUE_MTL_SCREENSHOT_DIR`` when set).

Skipped only when Chromium is absent outside CI; under ``CI=true`` (``.ci/run`` installs it) a
missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from mtl.cli.main import main  # noqa: E402
from mtl.serving.server import ServerThread, create_app  # noqa: E402

ROOT = Path(__file__).parent.parent
CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()), None
)
IN_CI = os.environ.get("CI", "").lower() == "true"
TINY = [
    "encoder.architecture.hidden_size=32",
    "encoder.architecture.num_hidden_layers=1",
    "encoder.architecture.num_attention_heads=2",
    "encoder.architecture.intermediate_size=64",
]
SENTENCE = "이순신은 1545년 서울 건천동에서 태어나 한산도 앞바다에서 왜군을 물리쳤다."


def browser_or_skip() -> str:
    """The Chromium executable; a skip outside CI when it is missing, a failure in CI."""
    if CHROMIUM is None or not _has_playwright():
        why = "Chromium (/usr/bin/chromium) or the playwright package is missing"
        if IN_CI:
            pytest.fail(f"{why}: .ci/run installs both (apt-get install chromium, pip install playwright)")
        pytest.skip(why)
    return CHROMIUM  # type: ignore[return-value]


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    browser_or_skip()  # before minutes of training
    from mtl import KlueMultiTask

    out = tmp_path_factory.mktemp("serve-browser")
    args = ["train", "--config", str(ROOT / "configs" / "demo.yaml"), "--output", str(out), *TINY]
    assert main([*args, "train.max_steps=8", f"cache_dir={out / 'cache'}"]) == 0
    return KlueMultiTask.from_pretrained(out / "best")


@pytest.mark.slow
def test_the_page_draws_the_entities_and_the_tree_the_api_returns(model: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    app = create_app(model)
    with ServerThread(app) as url, sync_playwright() as p:
        expected = httpx.post(f"{url}/v1/analyze", json={"text": SENTENCE}, timeout=60).json()["results"]
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            page.fill("#analyze-text", SENTENCE)
            page.click("#analyze-button")
            page.wait_for_selector("body[data-analyzed=true]", timeout=30_000)

            # Topic: the API's label is the highlighted bar; one bar per topic.
            assert page.locator("#topic .bar.top").get_attribute("data-label") == expected["ynat"]["label"]
            assert page.locator("#topic .bar").count() == len(expected["ynat"]["probs"])

            # NER: exactly the API's entities, each marked with its type, the sentence intact.
            marks = page.locator("#ner mark.ent")
            drawn = [
                {
                    "text": marks.nth(i).locator(".ent-text").inner_text(),
                    "type": marks.nth(i).get_attribute("data-type"),
                    "start": int(marks.nth(i).get_attribute("data-start") or -1),
                    "end": int(marks.nth(i).get_attribute("data-end") or -1),
                }
                for i in range(marks.count())
            ]
            assert drawn == expected["ner"]["entities"]
            assert expected["ner"]["entities"], "the tiny model should find some entities to draw"
            for i in range(marks.count()):
                assert marks.nth(i).locator("sup").inner_text() == drawn[i]["type"]
            plain = page.evaluate(
                "() => Array.from(document.querySelector('#ner').childNodes)"
                ".map(n => n.nodeType === 3 ? n.textContent : n.querySelector('.ent-text').textContent).join('')"
            )
            assert plain == SENTENCE

            # DP: the eojeols in order, one arc per word from its head, labelled with its relation.
            dp = expected["dp"]
            assert page.locator("#dp svg text.word").all_text_contents() == dp["words"]  # SVG: no innerText
            arcs = page.locator("#dp svg path.arc")
            assert arcs.count() == len(dp["words"])
            got = sorted(
                (
                    int(a.get_attribute("data-dep")),
                    int(a.get_attribute("data-head")),
                    a.get_attribute("data-label"),
                )
                for a in arcs.all()
            )
            want = [(i + 1, h, r) for i, (h, r) in enumerate(zip(dp["heads"], dp["deprels"], strict=True))]
            assert got == want
            labels = page.locator("#dp svg text.arc-label").all_text_contents()
            assert sorted(labels) == sorted(
                r if h else f"ROOT · {r}" for h, r in zip(dp["heads"], dp["deprels"], strict=True)
            )
            assert_labels_apart(page)
            # every arc is drawn inside the picture (a layout bug would put them at NaN or off-canvas)
            box = page.locator("#dp svg").bounding_box()
            assert box and box["width"] > 300 and box["height"] > 80
            for a in arcs.all():
                b = a.bounding_box()
                assert b and b["x"] >= box["x"] - 1 and b["x"] + b["width"] <= box["x"] + box["width"] + 1

            # MRC form: the answer the API gives is highlighted in the context.
            page.click("form[data-task=mrc] button[type=submit]")
            page.wait_for_selector("#mrc-result .label", timeout=30_000)
            example = next(t for t in httpx.get(f"{url}/v1/tasks").json()["tasks"] if t["name"] == "mrc")
            answer = httpx.post(f"{url}/v1/predict/mrc", json={"inputs": [example["example"]]}).json()[
                "results"
            ][0]
            if answer["answer"]:
                assert page.locator("#mrc-result mark.answer").inner_text() == answer["answer"]

            assert errors == []
            assert all(r.startswith(url) for r in requests), "the page loaded something from elsewhere"
            page.locator("#analyze-section").scroll_into_view_if_needed()
            shot = tmp_path / "serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("KLUE_MTL_SCREENSHOT_DIR"):
                folder = Path(os.environ["KLUE_MTL_SCREENSHOT_DIR"])
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, folder / shot.name)
        finally:
            browser.close()


def assert_labels_apart(page: Any) -> None:
    """No two relation labels of the drawn tree overlap (their boxes, as the browser laid them out)."""
    boxes = [b for t in page.locator("#dp svg text.arc-label").all() if (b := t.bounding_box())]
    assert len(boxes) == page.locator("#dp svg text.arc-label").count()
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart, f"labels overlap: {a} and {b}"


@pytest.mark.slow
def test_relation_labels_of_a_crowded_tree_never_overlap(model: Any) -> None:
    """One-syllable eojeols, five dependents of one head, two crossing arcs of the same span: the
    layout the first version drew with labels on top of each other."""
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    parse = {
        "words": ["가", "나", "다", "라", "마", "바", "사", "아", "자"],
        "heads": [5, 5, 5, 5, 0, 3, 4, 5, 5],
        "deprels": ["VNP_CMP", "NP_MOD", "VP_MOD", "NP_SBJ", "VP", "VNP_CMP", "NP_OBJ", "AP", "VP_CNJ"],
    }
    with ServerThread(create_app(model)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            page.evaluate(
                "parse => { renderTree(document.querySelector('#dp'), parse);"
                " document.querySelector('#analyze-results').hidden = false; }",
                parse,
            )
            assert page.locator("#dp svg path.arc").count() == len(parse["words"])
            assert_labels_apart(page)
        finally:
            browser.close()
