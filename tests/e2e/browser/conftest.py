"""Fixtures of the browser tests (``tests/e2e/browser``), reusable by any of them.

``lab`` (module scope: one JupyterLab with the sci_ext server extension enabled),
``lab_factory`` (start more, e.g. ``lab_factory(server_extension=False)``), ``browser``
(module: headless Debian Chromium through playwright), ``lab_page`` / ``lab_page_factory``
(the module's one browser tab, left blank after each test; a failing test leaves a
screenshot and the server log in ``tests/artifacts/``).  The classes are in :mod:`lab_harness`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_harness import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, LabPage, LabServer, labextension_installed


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through playwright (no browser download).

    Module scope, not session: playwright's sync API keeps an asyncio loop *running* in the
    main thread while it is open, and every later test that needs the thread's event loop
    (pytest-asyncio, pytest-jupyter, ``asyncio.run``) would fail with "loop already running".
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does), or set SCI_EXT_CHROMIUM")
    import asyncio

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    asyncio.set_event_loop(asyncio.new_event_loop())  # not the closed loop playwright leaves behind


@pytest.fixture(scope="session")
def require_labextension() -> Path:
    """The installed ``sci-ext`` labextension (fails clearly when it was never built)."""
    found = labextension_installed()
    if found is None:
        pytest.fail(
            "the sci-ext labextension is not installed in this environment: run ./scripts/dev.sh "
            "(pip install -e . builds it) or 'jupyter labextension develop --overwrite .'"
        )
    return found


@pytest.fixture(scope="module")
def lab_factory(
    tmp_path_factory: pytest.TempPathFactory, require_labextension: Path
) -> Iterator[Callable[..., LabServer]]:
    """Start JupyterLab servers (``factory(server_extension=..., settings=...)``); all stopped afterwards."""
    started: list[LabServer] = []

    def start(**kwargs: Any) -> LabServer:
        server = LabServer(tmp_path_factory.mktemp("lab"), **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def lab(lab_factory: Callable[..., LabServer]) -> LabServer:
    """JupyterLab with the sci_ext server extension enabled (shared by a module's tests)."""
    return lab_factory()


@pytest.fixture(scope="module")
def browser_page(browser: Any) -> Iterator[Any]:
    """The module's one browser tab (its tests take turns on it: see ``lab_page_factory``).

    One tab, not a new context per test: JupyterLab's scripts compiled by the tab's renderer
    stay compiled when the tab loads JupyterLab again (a load costs about 1.5 s of CPU instead
    of 3.5 s: measured, a new context or a new tab compiles everything again).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    # Leaving a notebook the test changed: JupyterLab asks "leave the page?"; yes (playwright's
    # default answer is no, which would keep the tab on the old page).
    page.on("dialog", lambda dialog: dialog.accept() if dialog.type == "beforeunload" else dialog.dismiss())
    yield page
    context.close()


@pytest.fixture
def lab_page_factory(browser_page: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[LabServer], LabPage]]:
    """Pages on a server (the module's tab, cleared after the test); a failing test leaves a
    screenshot in tests/artifacts/."""
    pages: list[LabPage] = []

    def make(server: LabServer) -> LabPage:
        if pages:
            raise RuntimeError("one page per test: the tests of a module take turns on one browser tab")
        page = LabPage(browser_page, server)
        pages.append(page)
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for page in pages:
        if failed:
            try:
                page.screenshot(f"FAILED-{request.node.name}")
                (ARTIFACTS / f"FAILED-{request.node.name}.log").write_text(page.lab.log_tail(400))
            except Exception:  # a crashed page must not hide the test's own failure
                pass
        page.release()


@pytest.fixture
def lab_page(lab: LabServer, lab_page_factory: Callable[[LabServer], LabPage]) -> LabPage:
    """A page on ``lab`` (not yet navigated: call ``.open()``)."""
    return lab_page_factory(lab)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item (for the failure screenshot above)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
