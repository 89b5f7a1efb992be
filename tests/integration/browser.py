"""Headless Chromium for the browser tests, and the checks every HTML page of a node passes.

Shared by the portal (test_portal.py) and the staff workspace (test_workspace.py):

- ``make_driver`` starts Debian's Chromium through chromedriver (selenium); ``Browser`` drives
  it through a test with a full-page screenshot per step (``<artifacts>/<test>-<NN>-<step>.png``)
  and refuses a page whose CSP blocked something or whose resources failed to load. The
  fixtures ``artifacts``, ``chrome``, ``browser`` and ``nojs_browser`` (conftest.py) give each
  test module its own directory under target/test-artifacts/ (test_portal -> portal/).
- ``html_problems`` is the verdict on a page's HTML: html5lib's strict parser, lang, one h1,
  heading order, labelled controls, named links and buttons, alt text, SVG roles and labels,
  landmarks, the language switch, the node's name, nothing loaded from elsewhere, no inline
  styles; ``security_header_problems`` that on its headers (CSP, nosniff, Referrer-Policy).
- ``Browser.low_contrast`` (WCAG AA) and ``Browser.sideways_overflow`` (a phone's width) measure
  the rendered page.

A missing Chromium fails the tests with a message; nothing is skipped.
"""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import html5lib
import html5lib.constants
import html5lib.html5parser
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from conftest import REPO, wait_until

AXE = REPO / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 levels A and AA, which BITV 2.0 requires of German public bodies.
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
  .then(result => done({
    passed: result.passes.length,
    violations: result.violations.map(v => [v.id, v.impact, v.help, v.nodes.map(n => n.html.slice(0, 160))]),
  }))
  .catch(error => done({passed: 0, violations: [['axe failed', 'critical', String(error), []]]}));
"""

if TYPE_CHECKING:
    from conftest import Node, Response

ARTIFACTS_ROOT = REPO / "target" / "test-artifacts"
CHROMIUM = Path(os.environ.get("URBANMESH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("URBANMESH_CHROMEDRIVER", "/usr/bin/chromedriver"))
# What Chromium sends for a page.
BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
                  "application/signed-exchange;v=b3;q=0.7")
# A page to load, an element to appear, the browser to navigate (a debug build on two cores).
PAGE_DEADLINE = 30.0
# The width of the phone the layout must fit.
PHONE_WIDTH = 390


def artifacts_dir(name: str) -> Path:
    """target/test-artifacts/<name>/, emptied of the last run's screenshots."""
    path = ARTIFACTS_ROOT / name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path


# ---- HTML validity and accessibility ------------------------------------------------------------


def local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def text_of(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def elements(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if local(el.tag) == name]


def parse_html(text: str) -> ET.Element:
    return html5lib.HTMLParser(namespaceHTMLElements=False).parse(text)


def parse_errors(text: str) -> list[str]:
    """html5lib's strict parser's verdict: nothing, or every parse error with its position."""
    try:
        html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
        return []
    except html5lib.html5parser.ParseError:
        parser = html5lib.HTMLParser(namespaceHTMLElements=False)
        parser.parse(text)
        lines = text.splitlines()
        out = []
        for (line, col), code, data in parser.errors:
            message = html5lib.constants.E.get(code, code)
            try:
                message = message % (data or {})
            except (TypeError, KeyError, ValueError):
                pass
            source = lines[line - 1][max(0, col - 60):col + 20] if 0 < line <= len(lines) else ""
            out.append(f"parse error at {line}:{col}: {message} … {source!r}")
        return out or ["html5lib's strict parser raised a ParseError"]


def same_origin(url: str | None, node: Node) -> bool:
    if not url or url.startswith(("data:", "#")):
        return True
    parts = urllib.parse.urlsplit(url)
    return not parts.scheme and not parts.netloc or parts.netloc == urllib.parse.urlsplit(node.http).netloc


def html_problems(text: str, lang: str, node: Node) -> list[str]:
    """What keeps a page from being valid, accessible and self-contained, as a list."""
    problems = list(parse_errors(text))
    if not text.lstrip("\ufeff \t\r\n").lower().startswith("<!doctype html>"):
        problems.append(f"no <!DOCTYPE html> at the start: {text[:80]!r}")
    root = parse_html(text)

    if root.get("lang") != lang:
        problems.append(f"<html lang={root.get('lang')!r}>, expected {lang!r}")
    titles = [t for t in elements(root, "title") if t.tag == "title"]  # the HTML title, not SVG's
    if len(titles) != 1 or not text_of(titles[0]):
        problems.append(f"the head needs one non-empty <title>, has {[text_of(t) for t in titles]}")

    headings = [(int(local(el.tag)[1]), text_of(el)) for el in root.iter()
                if isinstance(el.tag, str) and re.fullmatch(r"h[1-6]", el.tag)]
    h1 = [h for h in headings if h[0] == 1]
    if len(h1) != 1 or not h1[0][1]:
        problems.append(f"exactly one non-empty h1 expected, found {h1}")
    previous = 0
    for level, heading in headings:
        if level > previous + 1:
            problems.append(f"heading levels skip from h{previous} to h{level} ({heading!r}); all: {headings}")
        previous = level

    ids = Counter(el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id"))
    if any(n > 1 for n in ids.values()):
        problems.append(f"duplicate ids: {[i for i, n in ids.items() if n > 1]}")
    labels = {label.get("for"): text_of(label) for label in elements(root, "label") if label.get("for")}
    all_ids = set(ids)
    for control in [el for el in root.iter() if el.tag in ("input", "select", "textarea")]:
        kind = (control.get("type") or "text").lower()
        if control.tag == "input" and kind in ("hidden", "submit", "reset", "button", "image"):
            continue
        labelled_by = (control.get("aria-labelledby") or "").split()
        if not (labels.get(control.get("id")) or (control.get("aria-label") or "").strip()
                or (labelled_by and set(labelled_by) <= all_ids)):
            problems.append(f"<{control.tag} name={control.get('name')!r} type={kind!r}> has no label[for] "
                            "or aria-label")
    for button in elements(root, "button"):
        if not (text_of(button) or (button.get("aria-label") or "").strip()):
            problems.append(f"a <button> without text or aria-label: {ET.tostring(button, encoding='unicode')[:200]}")
    for link in [a for a in root.iter() if a.tag == "a" and a.get("href") is not None]:
        named = text_of(link) or (link.get("aria-label") or "").strip() or any(
            (img.get("alt") or "").strip() for img in elements(link, "img"))
        if not named:
            problems.append(f"a link without an accessible name: {ET.tostring(link, encoding='unicode')[:200]}")
    for img in elements(root, "img"):
        if img.get("alt") is None:
            problems.append(f"<img src={img.get('src')!r}> has no alt")
    for svg in elements(root, "svg"):
        if svg.get("role") != "img" or not (svg.get("aria-label") or "").strip():
            problems.append(f"<svg class={svg.get('class')!r}> needs role=img and an aria-label, has role="
                            f"{svg.get('role')!r} aria-label={svg.get('aria-label')!r}")

    landmarks = {name: [el for el in root.iter() if el.tag == name] for name in ("header", "main", "footer")}
    if not landmarks["header"] or len(landmarks["main"]) != 1 or not landmarks["footer"]:
        problems.append(f"landmarks: {({k: len(v) for k, v in landmarks.items()})}; expected header, one main, footer")
    if landmarks["header"]:
        header = landmarks["header"][0]
        switch = [a for a in elements(header, "a") if a.get("hreflang") and a.get("hreflang") != lang]
        if not switch:
            problems.append(f"the header has no link to the other language (a[hreflang] other than {lang!r})")
        if node.name not in text_of(header):
            problems.append(f"the header does not name the node ({node.name!r}): {text_of(header)[:200]!r}")

    # Self-contained under the node's own CSP: one stylesheet of its own, nothing from elsewhere,
    # and no inline styles (style-src 'self' would block them).
    sheets = [link for link in elements(root, "link") if "stylesheet" in (link.get("rel") or "").split()]
    if not any(urllib.parse.urlsplit(link.get("href") or "").path == "/assets/portal.css" for link in sheets):
        problems.append(f"no stylesheet /assets/portal.css linked: {[link.get('href') for link in sheets]}")
    for el in root.iter():
        tag = local(el.tag)
        for attribute in ("src", "data") if tag in ("img", "script", "iframe", "source", "object", "embed") else ():
            if not same_origin(el.get(attribute), node):
                problems.append(f"<{tag} {attribute}={el.get(attribute)!r}> loads from elsewhere")
        if tag == "link" and not same_origin(el.get("href"), node):
            problems.append(f"<link href={el.get('href')!r}> loads from elsewhere")
        if tag == "form" and not same_origin(el.get("action"), node):
            problems.append(f"<form action={el.get('action')!r}> posts elsewhere (form-action 'self')")
        if tag == "style" or (tag and el.get("style") is not None):
            problems.append(f"inline style on <{tag}> (the CSP's style-src 'self' blocks it): "
                            f"{(el.get('style') or text_of(el))[:100]!r}")
    return problems


def csp_directives(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


# ---- the browser ----------------------------------------------------------------------------------


def make_driver(artifacts: Path, javascript: bool = True, log_name: str = "chromedriver") -> webdriver.Chrome:
    """Headless Chromium (German first) driven through chromedriver, its log in `artifacts`."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"the browser tests need headless Chromium, but {' and '.join(missing)} is missing: install "
                    "Debian's `chromium` and `chromium-driver` (./scripts/test-all does), or set URBANMESH_CHROMIUM "
                    "and URBANMESH_CHROMEDRIVER", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1024",
                     "--no-proxy-server", "--lang=de-DE"):
        options.add_argument(argument)
    prefs = {"intl.accept_languages": "de-DE,de"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(artifacts / f"{log_name}.log"))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except WebDriverException as error:
        pytest.fail(f"headless Chromium ({CHROMIUM} with {CHROMEDRIVER}) did not start: {error.msg}", pytrace=False)
    driver.set_page_load_timeout(PAGE_DEADLINE)
    return driver


def stale(element: WebElement) -> bool:
    try:
        element.tag_name
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        # Asked in the instant the old document is torn down, Chromium answers this instead.
        if "does not belong to the document" in str(error):
            return True
        raise


def attr(element: WebElement, name: str) -> str:
    return element.get_attribute(name) or ""


def content(element: WebElement) -> str:
    """All text in the element, hidden and SVG titles included, whitespace collapsed."""
    return " ".join(attr(element, "textContent").split())


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


class Browser:
    """One Chromium driven through a test, with a screenshot per step."""

    def __init__(self, driver: webdriver.Chrome, test: str, artifacts: Path):
        self.driver = driver
        self.artifacts = artifacts
        self.test = re.sub(r"[^A-Za-z0-9_-]+", "-", test).strip("-")
        self.steps = 0

    # ---- navigation --------------------------------------------------------------------------

    def open(self, url: str, step: str) -> None:
        self.driver.get(url)
        self.loaded(step)

    def follow(self, element: WebElement, step: str, action=None) -> None:
        """Clicks `element` (or runs `action`) and waits for the next page."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        (action or element.click)()
        wait_until(lambda: stale(old), PAGE_DEADLINE, f"the browser to leave {self.url} ({step})")
        self.loaded(step)

    def loaded(self, step: str) -> None:
        wait_until(lambda: self.driver.execute_script("return document.readyState") == "complete", PAGE_DEADLINE,
                   f"{self.url} to load ({step})")
        self.shot(step)
        self.check_console()

    def check_console(self) -> None:
        """Nothing the page needs was refused by its CSP or failed to load (the page itself may be a 404)."""
        here = self.url.split("#")[0]
        complaints = []
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            if "Content Security Policy" in message:
                complaints.append(message)
            elif "Failed to load resource" in message and not message.startswith(here + " ") \
                    and "/favicon.ico" not in message:
                complaints.append(message)
        assert not complaints, f"{self.url}: the browser reports:\n" + "\n".join(complaints)

    # ---- screenshots --------------------------------------------------------------------------

    def shot(self, step: str) -> Path:
        """The whole page as PNG: <artifacts>/<test>-<NN>-<step>.png."""
        self.steps += 1
        path = self.artifacts / f"{self.test}-{self.steps:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', step)}.png"
        try:
            size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": max(1, size["width"]), "height": min(max(1, size["height"]), 10000),
                         "scale": 1}})
            path.write_bytes(base64.b64decode(shot["data"]))
        except (WebDriverException, KeyError):
            assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        return path

    # ---- reading the page -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.driver.current_url

    @property
    def lang(self) -> str:
        return attr(self.driver.find_element(By.TAG_NAME, "html"), "lang")

    def all(self, css: str, within: WebElement | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def one(self, css: str, within: WebElement | None = None) -> WebElement:
        found = self.all(css, within)
        assert len(found) == 1, f"{self.url}: expected one `{css}`, found {len(found)}"
        return found[0]

    def wait_for(self, css: str, what: str) -> list[WebElement]:
        return wait_until(lambda: self.all(css), PAGE_DEADLINE, f"{what} (`{css}`) on {self.url}")

    def h1(self) -> str:
        return content(self.one("h1"))

    def count(self) -> int:
        """The total of hits the search page states in #count."""
        text = content(self.one("#count"))
        match = re.search(r"\d+", text)
        assert match, f"#count states no number: {text!r}"
        return int(match.group())

    def accessible_name(self, control: WebElement) -> str:
        if attr(control, "aria-label").strip():
            return attr(control, "aria-label").strip()
        control_id = attr(control, "id")
        labels = self.all(f'label[for="{control_id}"]') if control_id else []
        return " ".join(content(label) for label in labels)

    def status(self) -> int:
        """The HTTP status of the page shown (the last response of its navigation)."""
        return int(self.driver.execute_script(
            "const n = performance.getEntriesByType('navigation'); return n.length ? n[0].responseStatus : 0;"))

    # ---- filling in forms ---------------------------------------------------------------------

    def type_into(self, css: str, text: str, within: WebElement | None = None) -> WebElement:
        """Clears the one field `css` and types `text` into it, as a person would."""
        field = self.one(css, within)
        field.clear()
        field.send_keys(text)
        return field

    def choose(self, css: str, value: str, within: WebElement | None = None) -> None:
        """Picks the option of `value` in the one <select> `css`."""
        Select(self.one(css, within)).select_by_value(value)

    def submit(self, form: WebElement, step: str) -> None:
        """Clicks the form's submit button and waits for the answer."""
        buttons = self.all("button[type=submit], button:not([type]), input[type=submit]", form)
        assert buttons, f"{self.url}: the form {attr(form, 'id') or attr(form, 'action')!r} has no submit button"
        self.follow(buttons[0], step)

    # ---- measuring the rendered page ------------------------------------------------------------

    def axe_violations(self) -> list:
        """What axe-core (npm, tests/axe), the checker accessibility audits use, finds against
        WCAG 2.1 A and AA on the page shown (asserts it checked enough to count)."""
        self.driver.execute_script(AXE.read_text())
        result = self.driver.execute_async_script(AXE_RUN)
        assert result["passed"] >= 10, f"axe checked too little to count on {self.url}: {result}"
        return result["violations"]

    def low_contrast(self) -> list[str]:
        """Text below WCAG AA contrast on the page shown (asserts the page has some text)."""
        samples = self.driver.execute_script(CONTRAST_SCRIPT)
        assert len(samples) >= 3, f"hardly any text found on {self.url}: {samples}"
        return contrast_failures(samples)

    def on_phone(self, url: str, step: str) -> list[str]:
        """Opens `url` on a phone's screen; returns what keeps it from fitting the width (no
        viewport meta, or content wider than the screen so that it scrolls sideways)."""
        driver, phone = self.driver, PHONE_WIDTH
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": phone, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        try:
            self.open(url, step)
            problems = []
            viewport = [attr(meta, "content") for meta in self.all('meta[name="viewport"]')]
            if len(viewport) != 1 or "width=device-width" not in viewport[0].replace(" ", ""):
                problems.append(f"a phone needs <meta name=viewport content=\"width=device-width, …\">, found {viewport}")
            scroll, wide = driver.execute_script(OVERFLOW_SCRIPT, phone)
            if scroll > phone + 1:
                problems.append(f"{scroll}px wide on a {phone}px phone, it scrolls sideways; too wide: {wide}")
            return problems
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# ---- contrast and width ------------------------------------------------------------------------------

CONTRAST_SCRIPT = """
const canvas = document.createElement('canvas');
canvas.width = canvas.height = 1;
const ctx = canvas.getContext('2d', {willReadFrequently: true});
function rgba(color) {
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = 'rgba(0, 0, 0, 0)';
  ctx.fillStyle = color;
  ctx.fillRect(0, 0, 1, 1);
  const d = ctx.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2], d[3] / 255];
}
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  if (el.closest('svg') || ['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
  const own = Array.from(el.childNodes).filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
  if (!own || el.getClientRects().length === 0) continue;
  const style = getComputedStyle(el);
  if (style.visibility !== 'visible') continue;
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const layer = rgba(getComputedStyle(node).backgroundColor);
    layers.push(layer);
    if (layer[3] >= 1) break;
  }
  out.push({text: own.slice(0, 40), tag: el.tagName.toLowerCase(), color: rgba(style.color), layers: layers,
            size: parseFloat(style.fontSize), weight: parseInt(style.fontWeight, 10) || 400});
}
return out;
"""


def luminance(rgb) -> float:
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def over(top, bottom) -> tuple:
    alpha = top[3]
    return tuple(top[i] * alpha + bottom[i] * (1 - alpha) for i in range(3)) + (1.0,)


def contrast_failures(samples: list[dict]) -> list[str]:
    failures = []
    for sample in samples:
        background = (255, 255, 255, 1.0)  # the canvas behind a page without a background
        for layer in reversed(sample["layers"]):
            background = over(layer, background)
        foreground = over(sample["color"], background)
        lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
        ratio = (lighter + 0.05) / (darker + 0.05)
        large = sample["size"] >= 24 or (sample["size"] >= 18.66 and sample["weight"] >= 700)
        needed = 3.0 if large else 4.5
        if ratio < needed - 0.01:
            text, behind = tuple(round(c) for c in foreground[:3]), tuple(round(c) for c in background[:3])
            failures.append(f"<{sample['tag']}> {sample['text']!r}: {ratio:.2f}:1 < {needed}:1 (text {text} on {behind})")
    return failures




OVERFLOW_SCRIPT = """
const limit = arguments[0];
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  if (el.parentElement && el.parentElement.closest('svg')) continue;
  let clipped = false;  // inside a box that scrolls or clips by itself
  for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
    if (getComputedStyle(up).overflowX !== 'visible') { clipped = true; break; }
  }
  if (clipped) continue;
  const box = el.getBoundingClientRect();
  if (box.right > limit + 1 && box.width > 0) {
    wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
              (typeof el.className === 'string' && el.className
                 ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
              ' ' + Math.round(box.right) + 'px');
  }
}
return [document.documentElement.scrollWidth, wide.slice(0, 12)];
"""




def security_header_problems(response: "Response") -> list[str]:
    """What the headers of an HTML page lack: a CSP without inline code, framing or foreign
    sources, nosniff, a same-origin referrer policy."""
    problems = []
    policy = response.headers.get("Content-Security-Policy")
    if not policy:
        return ["no Content-Security-Policy"]
    directives = csp_directives(policy)
    if directives.get("frame-ancestors") != ["'none'"]:
        problems.append(f"the CSP's frame-ancestors is not 'none': {policy}")
    if directives.get("default-src") != ["'none'"]:
        problems.append(f"the CSP's default-src is not 'none': {policy}")
    if "'unsafe-inline'" in policy or "'unsafe-eval'" in policy:
        problems.append(f"the CSP allows inline code: {policy}")
    if (response.headers.get("X-Content-Type-Options") or "").strip().lower() != "nosniff":
        problems.append(f"X-Content-Type-Options: {response.headers.get('X-Content-Type-Options')!r}")
    if (response.headers.get("Referrer-Policy") or "").strip().lower() != "same-origin":
        problems.append(f"Referrer-Policy: {response.headers.get('Referrer-Policy')!r}")
    return problems


# ---- tables on pages -------------------------------------------------------------------------------


def data_rows(table: WebElement) -> list[WebElement]:
    return [tr for tr in table.find_elements(By.CSS_SELECTOR, "tr") if tr.find_elements(By.CSS_SELECTOR, "td")]


def row_text(tr: WebElement) -> str:
    """A table row's cells, one space apart (textContent would run "13:45" and "524" together)."""
    return " ".join(content(cell) for cell in tr.find_elements(By.CSS_SELECTOR, "th, td"))
