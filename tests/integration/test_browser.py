"""A real browser (Debian's chromium, headless) loads the index page through nginx → Unix
socket → printerfacts: the fact is on the page and the stylesheet is applied."""

import os
import re
import shutil
import subprocess
import tempfile

from conftest import curl
from nginx import Nginx
from png import read_png

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=412,915"]  # a phone-sized viewport


def chromium(workdir, *args):
    profile = tempfile.mkdtemp(dir=workdir)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def near(colour, expected, tolerance=6):
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected))


def test_index_page_in_headless_chromium(start, workdir):
    assert os.path.exists(CHROMIUM), "chromium is not installed (scripts/install-deps --test installs it)"
    server = start("--listen", f"unix:{workdir}/http.sock", "--socket-group", "www-data")
    nginx = Nginx(workdir)
    try:
        dom = chromium(workdir, "--dump-dom", nginx.url("/")).stdout
        fact = re.search(r"<blockquote>(.+?)</blockquote>", dom)
        assert fact and len(fact.group(1)) > 10, dom[:2000]
        assert "<title>Printer Facts</title>" in dom

        shot = os.path.join(workdir, "index.png")
        chromium(workdir, f"--screenshot={shot}", nginx.url("/"))
        width, height, rows = read_png(shot)
        assert (width, height) == (412, 915)
        # The stylesheet's colours, which the browser's defaults (white, black) never produce:
        # the cyan band at the top of the header and the paper-coloured page background.
        assert near(rows[2][200], (0x00, 0xa3, 0xc4)), rows[2][200]
        assert near(rows[height - 5][5], (0xfb, 0xfa, 0xf7)), rows[height - 5][5]
        # The quote box is white with a magenta bar on its left.
        magenta = [x for x in range(width) if near(rows[200][x], (0xc4, 0x00, 0x7a), 12)]
        assert magenta, "no magenta quote bar at y=200"
        if os.environ.get("PRINTERFACTS_SCREENSHOT"):
            shutil.copy(shot, os.environ["PRINTERFACTS_SCREENSHOT"])
    finally:
        nginx.stop()
    # The browser really fetched the stylesheet through nginx from the service.
    server.stop()
    assert '"GET /static/style.css HTTP/1.0" 200' in server.stdout() or \
        '"GET /static/style.css HTTP/1.1" 200' in server.stdout(), server.stdout()
