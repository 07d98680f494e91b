"""The report in a real headless browser (Debian's Chromium; ``.ci/run`` installs it).

Never skipped: without ``/usr/bin/chromium`` the test fails and says how to install it.
A copy of the page gets one checking script (allowed by its hash in the page's
Content-Security-Policy, which otherwise forbids every script and every load) that writes
what the browser rendered - each image's natural width, each section's heading - into
the DOM; ``--dump-dom`` reads it back. A deliberately broken image in the copy shows the
check can fail. The unmodified page is then screenshotted and the PNG must not be blank.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from pophealth.reports import SECTIONS

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]
BROKEN = '<figure><img id="control-broken" src="data:image/png;base64,AAAA" alt="x"></figure>'
CHECK = """window.addEventListener("load", function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {id: i.id, width: i.naturalWidth, complete: i.complete};});
  var secs = Array.prototype.map.call(document.querySelectorAll("section"), function (s) {
    var h = s.querySelector("h2"); return [s.id, h ? h.textContent : null];});
  var out = document.createElement("pre"); out.id = "pophealth-check";
  out.textContent = JSON.stringify({images: imgs, sections: secs});
  document.body.appendChild(out);
});"""


def _chromium(tmp_path, *args, timeout=60) -> subprocess.CompletedProcess:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver; .ci/run does this)")
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _with_check(page: str) -> str:
    digest = base64.b64encode(hashlib.sha256(CHECK.encode()).digest()).decode()
    assert page.count("default-src 'none';") == 1
    page = page.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{digest}';")
    return page.replace("</body>", f"{BROKEN}<script>{CHECK}</script></body>")


def test_report_renders_in_headless_chromium_with_every_section_and_image(report, tmp_path):
    page = tmp_path / "checked.html"
    page.write_text(_with_check(report.html), encoding="utf-8")
    proc = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="pophealth-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no check output from Chromium (exit {proc.returncode}): {proc.stderr[-500:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert [tuple(s) for s in result["sections"]] == list(SECTIONS.items())
    images = {i["id"] or f"img{k}": i for k, i in enumerate(result["images"])}
    control = images.pop("control-broken")
    assert control["width"] == 0  # the check does see a missing image
    assert len(images) == report.html.count("<img ") == 7
    assert [k for k, i in images.items() if not (i["complete"] and i["width"] > 0)] == []


def test_report_screenshot_is_not_blank(report, tmp_path):
    from matplotlib.image import imread

    page = tmp_path / "report.html"
    report.write_html(page)
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400",
                     page.as_uri())
    assert shot.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-500:]}"
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1200)
    colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 100  # text, tables and figures, not a blank or one-colour page
    assert float(pixels.std()) > 0.05
