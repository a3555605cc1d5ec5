"""End to end in a real browser: sample data, tuning with the demo model, live loss curve, comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.test_app_support import running_app, stop_all_runs


pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"
# Generous limits for a shared 2-core machine; the test waits for conditions, never for fixed times.
STEP_TIMEOUT_MS = 240_000


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; install Debian's chromium package to run the browser test")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


# Vega draws each stage's line as one SVG path with one M or L command per point.
COUNT_LOSS_POINTS_JS = """() => Array.from(document.querySelectorAll('#loss-plot g.mark-line path'))
    .map(path => ((path.getAttribute('d') || '').match(/[ML]/g) || []).length)
    .reduce((a, b) => a + b, 0)"""


def test_browser_tune_and_compare(browser_page, tmp_path):
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)

    with running_app(tmp_path / "workspace") as (_, url, settings):
        try:
            page.goto(url)
            page.get_by_role("button", name="Use the bundled sample data").click()
            page.wait_for_function(
                "() => document.querySelector('#ingest-summary')?.innerText.includes('40 image–report pairs ready')"
            )
            page.screenshot(path=str(ARTIFACTS / "app-data.png"), full_page=True)

            page.get_by_role("tab", name="2. Tune").click()
            page.get_by_text("Advanced").click()
            max_steps = page.get_by_label("Max steps (main stage)")
            max_steps.fill("24")
            max_steps.press("Tab")
            page.locator("#start-training").click()

            page.wait_for_function(f"() => ({COUNT_LOSS_POINTS_JS})() >= 2", timeout=STEP_TIMEOUT_MS)
            assert page.evaluate(COUNT_LOSS_POINTS_JS) >= 2
            page.screenshot(path=str(ARTIFACTS / "app-tune-live.png"), full_page=True)

            page.wait_for_function(
                "() => document.querySelector('#training-status')?.innerText.includes('completed')",
                timeout=STEP_TIMEOUT_MS,
            )
            page.screenshot(path=str(ARTIFACTS / "app-tune-done.png"), full_page=True)

            page.get_by_role("tab", name="3. Compare").click()
            page.wait_for_function(
                "() => (document.querySelector('#compare-run input')?.value || '').length > 0"
            )
            limit = page.get_by_label("Questions to score (0: all)")
            limit.fill("4")
            limit.press("Tab")
            page.locator("#run-comparison").click()
            page.wait_for_function(
                """() => { const t = document.querySelector('#accuracy-table')?.innerText || '';
                           return t.includes('tuned') && t.includes('base') && t.includes('%'); }""",
                timeout=STEP_TIMEOUT_MS,
            )
            accuracy_text = page.locator("#accuracy-table").inner_text()
            assert "option likelihood" in accuracy_text
            assert "meaningless" in page.locator("#comparison-summary").inner_text()
            assert not page.get_by_text("Question file: columns image").is_visible()
            page.screenshot(path=str(ARTIFACTS / "app-compare.png"), full_page=True)

            # The runs table must stay readable in a 1280 px window.
            page.set_viewport_size({"width": 1280, "height": 900})
            page.get_by_role("tab", name="4. Runs").click()
            page.wait_for_function(
                "() => (document.querySelector('#runs-table')?.innerText || '').includes('completed')"
            )
            header_height = page.evaluate(
                "() => document.querySelector('#runs-table thead tr').getBoundingClientRect().height"
            )
            page.screenshot(path=str(ARTIFACTS / "app-runs-1280.png"), full_page=False)
            assert header_height < 80, f"runs table header is {header_height:.0f} px tall"
            assert page.locator("#resume-run").is_disabled()
        finally:
            stop_all_runs(settings)


def test_browser_session_end_deletes_uploads(browser_page, tmp_path):
    from tests.conftest import SAMPLE_DATA
    from tests.test_app_support import wait_for

    page = browser_page
    files = [str(path) for image in sorted(SAMPLE_DATA.glob("*.jpg"))[:2]
             for path in (image, image.with_suffix(".txt"))]

    with running_app(tmp_path / "workspace") as (_, url, settings):
        page.goto(url)
        # The second file input is "Or upload files or one .zip archive".
        page.locator("input[type=file]").nth(1).set_input_files(files)
        page.wait_for_function(
            "() => document.querySelector('#ingest-summary')?.innerText.includes('2 image–report pairs ready')"
        )
        assert list(settings.sessions_dir.iterdir())

        page.close()

        wait_for(lambda: not list(settings.sessions_dir.iterdir()), timeout=60, what="the session folder to go")
