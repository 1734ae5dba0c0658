"""The report from a real (tiny) ``perfsuite run``, opened in headless Chromium.

Chromium is driven by selenium through the system ``chromedriver`` (Debian
packages ``chromium`` and ``chromium-driver``). Without them the browser tests
skip locally, but fail under ``CI=true``: CI must install them.

Each page load checks: no console error, every request is ``file:`` or
``data:`` (no network address) and none failed, every image decoded, the
charts laid out, and a full-page screenshot that is not blank. Screenshots are
kept in ``$PERFSUITE_SCREENSHOTS`` when that is set.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from perfsuite.cli.main import main
from tests.conftest import mnist_root
from tests.fakerun import make_run
from tests.test_report import _evidence

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def _missing_browser():
    if not any(shutil.which(b) for b in BROWSERS) or not shutil.which("chromedriver"):
        return "chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a fresh profile, logging console and network events."""
    reason = _missing_browser()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test must run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1200,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _network(driver, page: str) -> tuple:
    """``(URLs the page requested, failures)`` from the DevTools performance log since the last read."""
    ours, urls, failures = set(), [], []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent" and params.get("documentURL") == page:
            ours.add(params["requestId"])
            urls.append(params["request"]["url"])
        elif params.get("requestId") not in ours:
            continue
        elif message["method"] == "Network.loadingFailed":
            failures.append(f"{params.get('errorText')} ({params.get('type')})")
        elif message["method"] == "Network.responseReceived" and params["response"].get("status", 200) >= 400:
            failures.append(f"HTTP {params['response']['status']} {params['response']['url'][:100]}")
    return urls, failures


def _not_blank(path: Path) -> None:
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"))[::4, ::4].reshape(-1, 3)
    inked = float((pixels.min(axis=1) < 235).mean())
    colours = len(np.unique(pixels, axis=0))
    assert inked > 0.05, f"screenshot {path} is almost blank ({inked:.1%} inked)"
    assert colours > 200, f"screenshot {path} has only {colours} colours: charts missing?"


def _load_offline(driver, url: str) -> list:
    """Open ``url``: it loads with no console error, no request leaving the file and none failing; the URLs."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors: {errors}"
    urls, failures = _network(driver, url)
    remote = [u[:100] for u in urls if not u.startswith(("file:", "data:"))]
    assert not remote, f"requests leaving the file: {remote}"
    assert not failures, f"failed requests: {failures}"
    return urls


def check_page(driver, html: Path, shot: Path) -> dict:
    """Open ``html`` from a file:// address and check it as a person would see it."""
    page = html.resolve().as_uri()
    urls = _load_offline(driver, page)
    assert page in urls, "the DevTools network log saw no request for the page itself"
    layout = driver.execute_script("""
        const imgs = [...document.images];
        return {broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).length, images: imgs.length,
                charts: [...document.querySelectorAll('.chart')]
                    .filter(c => c.getBoundingClientRect().width > 200).length,
                height: document.documentElement.scrollHeight, headline: document.getElementById('headline').innerText};
    """)
    assert layout["broken"] == 0, layout
    driver.set_window_size(1200, min(layout["height"] + 100, 16000))
    driver.save_screenshot(str(shot))
    _not_blank(shot)
    keep = os.environ.get("PERFSUITE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return layout


def check_svg(driver, svg: Path) -> list:
    """Open a flame-graph SVG from a file:// address: no console error, no request beyond the file, no failure.

    Returns the titles (``name (N samples, S%)``) of the frames drawn with a width.
    """
    _load_offline(driver, svg.resolve().as_uri())
    return driver.execute_script("""
        return [...document.querySelectorAll('#frames g')]
            .filter(g => g.querySelector('rect').getBoundingClientRect().width > 0)
            .map(g => g.querySelector('title').textContent);
    """)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One tiny real run (idiomatic and store, 2 measured epochs of 2% of the data)."""
    out = tmp_path_factory.mktemp("real") / "run"
    data = ["--data-dir", mnist_root()] if mnist_root() else ["--dataset", "synthetic"]
    status = main(
        [
            "run",
            "--impls",
            "idiomatic,store",
            "--subset",
            "0.02",
            "--epochs",
            "2",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(out),
            *data,
        ]
    )
    assert status == 0
    return out


def test_run_writes_the_report(real_run, capsys):
    html = (real_run / "index.html").read_text()
    assert 'id="headline"' in html and "idiomatic" in html and "store" in html
    summary = json.loads((real_run / "summary.json").read_text())
    assert summary["statistics"]["baseline"] == "idiomatic"
    assert summary["statistics"]["implementations"]["store"]["speedup"]["n"] == 2


def test_real_report_in_chromium(browser, real_run, tmp_path):
    layout = check_page(browser, real_run / "index.html", tmp_path / "real-report.png")
    assert layout["charts"] >= 6
    assert "faster than idiomatic" in layout["headline"] or "fastest" in layout["headline"]


def test_evidence_report_in_chromium(browser, tmp_path):
    folder = make_run(tmp_path / "evidence", epochs=3, steps=20, synthetic=True)
    _evidence(folder)
    main(["report", str(folder)])
    layout = check_page(browser, folder / "index.html", tmp_path / "evidence-report.png")
    assert layout["charts"] >= 6
    assert browser.find_element("id", "synthetic-banner").is_displayed()
    assert browser.find_element("id", "benchmarks").is_displayed()


def test_checker_catches_remote_requests_and_console_errors(browser, tmp_path):
    """The checks above are not vacuous: a page that reaches out or logs an error fails them."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><p id="headline">x</p><script>console.error("boom")</script></body></html>'
    )
    with pytest.raises(AssertionError, match="console errors"):
        check_page(browser, page, tmp_path / "bad.png")
    page.write_text(
        '<!DOCTYPE html><html><body><p id="headline">x</p><img src="http://127.0.0.1:9/missing.png"></body></html>'
    )
    with pytest.raises(AssertionError, match="requests leaving the file|console errors"):
        check_page(browser, page, tmp_path / "bad.png")
