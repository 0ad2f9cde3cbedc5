"""The web console in a real browser: headless Chromium driven by Playwright.

Debian's `chromium` is the browser (no browser download is possible here); `.ci/run` installs
it. Set THERAMIND_SCREENSHOTS=DIR to save the screenshots the README shows.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from scripted import Counselor, scripted_backend  # noqa: E402
from theramind import TheraMind, load_config  # noqa: E402
from theramind.llm import Request, ScriptedBackend  # noqa: E402
from theramind.memory import HashingEmbedder, build_memory  # noqa: E402
from theramind.services import build_services  # noqa: E402
from theramind.simulation import ExperimentRunner, load_experiment  # noqa: E402
from theramind.web import create_app  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("THERAMIND_CHROMIUM", "/usr/bin/chromium")
REPLY = "It sounds like the week has been heavy for you. What part of it stays with you most?"


class WordByWord(ScriptedBackend):
    """The scripted counselor, streaming its free-text replies a word at a time."""

    def stream(self, request: Request) -> Any:
        for i, word in enumerate(REPLY.split(" ")):
            time.sleep(0.01)
            yield word if i == 0 else " " + word


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    import uvicorn

    root = tmp_path_factory.mktemp("console")
    runs = root / "runs"
    experiment = load_experiment(
        Path(__file__).resolve().parents[2] / "configs" / "experiments" / "scripted-smoke.yaml",
        output_dir=str(runs / "smoke"),
    )
    experiment = experiment.model_copy(
        update={"counselors": experiment.counselors[:1], "patients": experiment.patients[:1]}
    )
    ExperimentRunner(experiment).run()

    settings = load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": str(root / "home")},
        memory={"backend": "inmemory", "min_similarity": 0.2},
    )
    counselor = scripted_backend(Counselor(replies=[REPLY] * 50))
    backend = WordByWord(handler=counselor.handler)
    services = build_services(
        settings,
        backends={"counselor": backend},
        memory=build_memory(settings, embedder=HashingEmbedder()),
    )
    mind = TheraMind(services)
    port = _free_port()
    config = uvicorn.Config(create_app(mind, runs_dir=runs), host="127.0.0.1", port=port)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "the console server did not start"
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    mind.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        b = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("THERAMIND_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _send(page: Any, text: str) -> None:
    before = page.locator("#chat li.counselor[data-turn]").count()
    page.fill("#message", text)
    page.click("#send")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat li.counselor[data-turn]').length > n", arg=before
    )


def test_counsel_supervise_and_close_in_the_browser(server: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "/")
    page.fill("#patient-id", "web1")
    page.fill("#patient-name", "Robin")
    page.fill("#patient-problem", "Stress at work and poor sleep")
    page.click("#start")
    page.wait_for_selector("#chat li.counselor")
    assert "Robin" in page.inner_text("#chat li.counselor")
    assert page.is_enabled("#message")

    # Count how often the counselor's bubble changes while a reply arrives.
    page.evaluate(
        """() => {
          window.__updates = 0;
          new MutationObserver(() => { window.__updates += 1; })
            .observe(document.getElementById('chat'),
                     {subtree: true, characterData: true, childList: true});
        }"""
    )
    for text in ("Work has been overwhelming.", "I lie awake most nights.", "My boss is harsh."):
        _send(page, text)
    replies = page.locator("#chat li.counselor[data-turn] .text").all_inner_texts()
    assert replies == [REPLY] * 3
    assert page.evaluate("window.__updates") > 3 * len(REPLY.split(" ")) // 2  # streamed, not whole
    assert page.inner_text("#supervision [data-field=emotion]") not in ("", "–")
    assert page.inner_text("#supervision [data-field=strategy]") not in ("", "–")
    assert page.inner_text("#supervision [data-field=phase]") not in ("", "–")
    assert page.is_hidden("#risk-banner")
    _shot(page, "console-chat.png")

    hostile = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> help'
    _send(page, hostile)
    mine = page.locator("#chat li.patient .text").last
    assert mine.inner_text() == hostile
    assert page.locator("#chat img").count() == 0 and page.locator("#chat script").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    _send(page, "I want to kill myself tonight.")
    page.wait_for_selector("#risk-banner", state="visible")
    assert page.locator("#risk-resources li").count() >= 1
    assert "Emergency" in page.inner_text("#risk-resources")
    assert page.inner_text("#supervision [data-field=risk]").split()[0] in ("moderate", "high")

    page.click("#end")
    page.wait_for_selector("#outcome", state="visible")
    assert "Next session:" in page.inner_text("#outcome")

    page.click("#tab-patient")
    page.fill("#view-patient-id", "web1")
    page.click("#patient-form button")
    page.wait_for_selector("#timeline li strong")
    assert "Session 1:" in page.inner_text("#timeline")
    page.close()


def test_read_a_run_in_the_viewer(server: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "/")
    page.click("#tab-runs")
    page.wait_for_function("document.querySelectorAll('#run-select option').length > 1")
    page.select_option("#run-select", "smoke")
    page.wait_for_selector("#run-index tbody tr a")
    page.locator("#run-index tbody tr a").first.click()
    page.wait_for_selector("#transcript li.patient")
    assert "session 1" in page.inner_text("#transcript-title")
    notes = page.locator("#transcript li.counselor .notes").all_inner_texts()
    assert notes and all("risk" in n for n in notes)
    assert any("strategy" in n for n in notes)
    _shot(page, "console-runs.png")
    page.close()
