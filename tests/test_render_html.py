"""HTML reports (crosscheck._render_html): they parse, embed their images, name every block,
escape what users wrote, degrade without matplotlib, and render in a real browser."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import crosscheck
from crosscheck import _render_html
from crosscheck._render_html import as_2d, render_page, render_report_html
from crosscheck._run_file import Outcome

VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "source", "wbr"}
EVIL = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Tags, attributes and text of a page; fails on mismatched nesting."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.data, self.stack = [], [], [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.data.append(data)

    @property
    def text(self) -> str:
        return " ".join(self.data)

    def images(self) -> list:
        return [a["src"] for tag, a in self.attrs if tag == "img"]


def _check_images(page: Page) -> None:
    for src in page.images():
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


@pytest.fixture(scope="module")
def seed_reports(request):
    cache = request.getfixturevalue("reports")
    return [cache.get("seed_net", "correct", oracles=("fd",)),
            cache.get("seed_net", "buggy", oracles=("fd",))]


def test_page_parses_embeds_images_and_names_every_block(seed_reports):
    pytest.importorskip("matplotlib")
    html = render_page([*seed_reports, Outcome("gone.py:x", None, "no file `gone.py`.")],
                       title="nightly", metadata={"time": "T", "host": "H", "command": "c",
                                                  "versions": {"numpy": "2"}})
    page = Page(html)
    assert page.stack == []   # every element closed, in order
    assert html.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in html
    # the summary, two block tables, the worst elements of each wrong block (b1, W2), and
    # per case the backward's quantities (seed_net's grad returns its intermediates)
    assert page.tags.count("table") == 7 and "section" in page.tags
    # one chart per case, a heat-map per wrong block (b1, W2)
    assert len(page.images()) == 4
    _check_images(page)
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert name in page.text
    assert "seed_net/buggy: FLAGGED 2 of 6 block(s): b1, W2" in page.text
    assert "gone.py:x: could not be checked" in page.text and "no file `gone.py`." in page.text
    assert "hand = 4.000 × reference (fd)" in page.text
    for forbidden in ('src="http', "href=\"http", "<script", "<link", "url(", "@import"):
        assert forbidden not in html
    assert all(not k.startswith("on") for _, a in page.attrs for k in a)


def test_user_supplied_text_is_escaped():
    names = [EVIL, "W"]
    params = {EVIL: np.array([1.0, -2.0, 0.5]), "W": np.array([[1.0, 2.0], [3.0, 4.0]])}

    def loss(p):
        return (p[EVIL] ** 2).sum() + (p["W"] ** 3).sum()

    def grad(p):
        return {EVIL: 4 * p[EVIL], "W": 3 * p["W"] ** 2}

    case = '<img src=x onerror="alert(2)">'
    report = crosscheck.check(loss, grad, params, oracles=("fd",), case=case)
    assert report.flagged == [EVIL]
    report.notes.append("note <b onmouseover=alert(3)>")
    html = render_page([report, Outcome("x.py:<i>", None, "error <script>alert(4)</script>")],
                       title="<title>")
    fragment = render_report_html(report)
    for text in (html, fragment):
        page = Page(text)
        assert "script" not in page.tags and "b" not in page.tags and "i" not in page.tags
        assert all(src.startswith("data:") for src in page.images())
        assert all(not k.startswith("on") for _, a in page.attrs for k in a)
        assert "<script" not in text and "<b " not in text
        for name in names:
            assert name in page.text        # shown, as text
        assert case in page.text
        assert f"`{EVIL}`" in page.text     # inside the diagnosis text
    assert "note <b onmouseover=alert(3)>" in Page(html).text
    assert "error <script>alert(4)</script>" in Page(html).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_heat_maps_for_0d_and_1d_blocks():
    pytest.importorskip("matplotlib")
    params = {"s": np.array(1.5), "v": np.array([1.0, 2.0, -3.0, 0.5])}
    report = crosscheck.check(lambda p: p["s"] ** 2 + (p["v"] ** 2).sum(),
                              lambda p: {"s": 3 * p["s"], "v": 2 * p["v"] * np.array([1, 1, 2, 1])},
                              params, oracles=("fd",))
    assert report.flagged == ["s", "v"]
    page = Page(render_report_html(report))
    assert len(page.images()) == 3
    _check_images(page)


def test_as_2d():
    assert as_2d(np.array(2.0)).shape == (1, 1)
    assert as_2d(np.arange(5.0)).shape == (1, 5)
    assert as_2d(np.zeros((5, 1))).shape == (5, 1)
    assert as_2d(np.zeros((2, 3, 4))).shape == (2, 12)


def test_jupyter_repr_is_a_fragment(seed_reports):
    pytest.importorskip("matplotlib")
    html = seed_reports[1]._repr_html_()
    assert html.startswith('<div class="crosscheck"><style>') and html.endswith("</div>")
    page = Page(html)
    assert page.stack == [] and "table" in page.tags and len(page.images()) == 3
    assert "<html" not in html


def test_without_matplotlib_tables_still_render(seed_reports, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    html = render_page(seed_reports)
    page = Page(html)
    assert page.images() == []
    assert "Charts need matplotlib, which is not installed" in page.text
    assert "W2" in page.text and page.tags.count("table") == 7   # worst elements, quantities too


def test_a_failing_chart_costs_only_the_chart(seed_reports, monkeypatch):
    pytest.importorskip("matplotlib")

    def boom(report, figure):
        raise RuntimeError("<boom>")

    monkeypatch.setattr(_render_html, "difference_chart", boom)
    html = render_page(seed_reports)
    assert "A chart could not be drawn: RuntimeError: &lt;boom&gt;" in html
    assert Page(html).tags.count("table") == 7   # with the backward's quantities per case


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs /usr/bin/chromium")
def test_page_renders_in_headless_chromium(seed_reports, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    page = tmp_path / "report.html"
    page.write_text(render_page(seed_reports, title="crosscheck in chromium"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True, timeout=180, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    assert shot.stat().st_size > 20_000
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    rows = pixels[::100, :, :3].reshape(-1, 3)
    colours = np.unique(np.round(rows * 255).astype(int), axis=0)
    assert len(colours) > 20, "the screenshot is (nearly) a single colour"
    # the red of WRONG / FLAGGED and the blue of the fd bars are on the page
    flat = pixels[..., :3].reshape(-1, 3)
    assert np.any((flat[:, 0] > 0.7) & (flat[:, 1] < 0.3) & (flat[:, 2] < 0.3))
    assert np.any((flat[:, 2] > 0.7) & (flat[:, 0] < 0.2))
