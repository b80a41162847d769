"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against a real server."""

from pathlib import Path

import onnxruntime as ort
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.server import TINY_SEARCH, Server, wait_for

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    srv = Server(tmp_path_factory.mktemp("dash") / "data").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def login(page, server, token):
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")


def test_dashboard_end_to_end(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    console = []
    page.on("console", lambda m: console.append(m.text))
    page.on("pageerror", lambda e: console.append(str(e)))
    login(page, server, "nas_not_a_token")
    expect(page.locator("#login-error")).to_contain_text("not valid")
    page.screenshot(path=SHOTS / "login-error.png")

    login(page, server, server.admin_token)
    expect(page.locator("h1")).to_contain_text("Searches")
    page.screenshot(path=SHOTS / "searches-empty.png")

    # a validation error is shown next to its field
    page.goto(server.url + "/searches/new")
    page.fill("input[name=steps]", "0")
    page.click("#submit")
    expect(page.locator('[data-error="train"]')).to_contain_text("train.steps")
    page.screenshot(path=SHOTS / "new-search-error.png")

    # submit a hybrid-tiny search from the form and watch it finish without reloading
    page.goto(server.url + "/searches/new")
    page.fill("input[name=name]", "tiny from the form")
    page.select_option("select[name=space]", "hybrid-tiny")
    page.fill("input[name=steps]", "60")
    page.fill("input[name=evaluations]", "8")
    page.uncheck("input[name=finalize]")
    page.screenshot(path=SHOTS / "new-search.png")
    page.click("#submit")
    page.wait_for_url(lambda u: "/searches/" in u and not u.endswith("/new"))
    search_url = page.url
    widths = []
    for _ in range(600):
        widths.append(page.eval_on_selector("#progress", "e => parseFloat(e.style.width)"))
        if page.locator("#status").inner_text() == "succeeded":
            break
        page.wait_for_timeout(500)
    assert page.locator("#status").inner_text() == "succeeded"
    assert len({w for w in widths if 0 < w < 100}) >= 2, f"the progress bar never moved: {widths}"
    # every candidate is a point (grey, or red on the front); redraws are throttled, so wait for all 8
    expect(page.locator("#pareto .scatterlayer .point")).to_have_count(8, timeout=15000)
    expect(page.locator("#candidates tbody tr")).to_have_count(8)
    page.screenshot(path=SHOTS / "search-finished.png", full_page=True)

    # open a candidate and download its ONNX export
    page.locator("#candidates tbody tr a").first.click()
    expect(page.locator("#diagram .layer").first).to_be_visible()
    page.screenshot(path=SHOTS / "candidate.png", full_page=True)
    with page.expect_download(timeout=120_000) as download:
        page.click("#export-onnx")
    onnx_path = tmp_path / "model.onnx"
    download.value.save_as(onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [1, 8, 8]

    # cancel another search from its page
    c = server.client()
    long_id = c.post("/api/v1/searches", json=TINY_SEARCH | {"train": {"steps": 5000}}, params={"name": "long"}).json()["id"]
    page.goto(f"{server.url}/searches/{long_id}")
    expect(page.locator("#phase")).to_have_text("train", timeout=120_000)
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("cancelled", timeout=60_000)
    page.screenshot(path=SHOTS / "search-cancelled.png")

    page.goto(server.url + "/")
    expect(page.locator("#searches tbody tr")).to_have_count(2)
    page.screenshot(path=SHOTS / "searches.png")
    search_id = search_url.rsplit("/", 1)[1]
    page.goto(f"{server.url}/compare?ids={search_id}")
    try:
        expect(page.locator("#compare-plot .scatterlayer .point").first).to_be_visible(timeout=15000)
    except AssertionError:
        page.screenshot(path=SHOTS / "compare-failed.png")
        print("browser console:", console, page.url)
        raise
    page.screenshot(path=SHOTS / "compare.png")
    page.goto(server.url + "/hardware")
    expect(page.locator("h1")).to_contain_text("latency tables")
    page.screenshot(path=SHOTS / "hardware.png")

    # a search with a trust report shows it: the two rank correlations and a point per arch trained from scratch
    trust = TINY_SEARCH | {"trust": {"enabled": True, "archs": 3, "epochs": 1}}
    trusted_id = c.post("/api/v1/searches", json=trust).json()["id"]
    assert wait_for(c, trusted_id, lambda b: b["status"] in ("succeeded", "failed"))["status"] == "succeeded"
    report = c.get(f"/api/v1/searches/{trusted_id}/trust").json()
    assert len(report["points"]) == 3, report
    page.goto(f"{server.url}/searches/{trusted_id}")
    expect(page.locator("#trust-tau")).to_have_text(f"{report['kendall_tau']:.3f}")
    expect(page.locator("#trust-plot .scatterlayer .point")).to_have_count(3, timeout=15000)
    page.screenshot(path=SHOTS / "search-trust.png", full_page=True)
    page.close()


def test_other_users_search_is_not_reachable(server, browser):
    c = server.client()
    search_id = c.post("/api/v1/searches", json=TINY_SEARCH | {"train": {"steps": 5000}}).json()["id"]
    c.post(f"/api/v1/searches/{search_id}/cancel")
    bob = c.post("/api/v1/users", json={"name": "bob"}).json()["token"]
    page = browser.new_page()
    login(page, server, bob)
    response = page.goto(f"{server.url}/searches/{search_id}")
    assert response.status == 404
    expect(page.locator("#page-error")).to_contain_text("not found")
    page.screenshot(path=SHOTS / "other-user-404.png")
    page.close()
