"""A letter printed to PDF, or photographed to PNG, by a headless Chromium.

Why Chromium and not a PDF library: the letter is HTML and CSS; Chromium prints exactly what the person would see in
a browser (tables, page breaks, A4 margins from `@page`), with full Unicode (ë, €, curly quotes) from the system
fonts, and the same browser makes the PNG pictures the tests leave in var/letters/ (and will drive the web console's
tests). A pure-Python library (fpdf2, xhtml2pdf) renders only a subset of HTML and CSS, so the letter would need a
second layout. Debian's `chromium` package; `make chromium` installs it when absent (infra/chromium.sh).

The letter holds personal data: it is written to a private temporary directory (0700) that is removed afterwards,
and Chromium runs with a throw-away profile, no network access beyond the file, and a time limit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 60  # seconds per run
WIDTH = 900  # pixels of a PNG's width (a page of about 210 mm at 96 dpi plus margin)
WORKERS = 2  # Chromium runs at a time when photographing several letters
_HEIGHTS = re.compile(r'data-letter-height="(\d+)"')

class NoBrowser(RuntimeError):
    """No Chromium on this machine (`make chromium` installs it)."""


class PrintFailed(RuntimeError):
    """Chromium did not produce the file (its output is not shown: it could quote the letter)."""


def browser() -> str:
    """The path of the Chromium to use: WERKBRUG_CHROMIUM, or the first of NAMES on the PATH."""
    configured = os.environ.get("WERKBRUG_CHROMIUM")
    if configured:
        return configured
    for name in NAMES:
        if found := shutil.which(name):
            return found
    raise NoBrowser("no Chromium found: run `make chromium` (Debian package chromium) or set WERKBRUG_CHROMIUM")


def _run(html: str, *arguments: str) -> str:
    with tempfile.TemporaryDirectory(prefix="werkbrug-letter-") as work:
        os.chmod(work, 0o700)
        page = Path(work) / "letter.html"
        page.write_text(html, encoding="utf-8")
        command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                   "--no-first-run", "--hide-scrollbars", f"--user-data-dir={Path(work) / 'profile'}",
                   "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", *arguments, page.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PrintFailed(f"chromium did not finish within {TIMEOUT} s") from None
        return done.stdout


def _write(target: Path, produce) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".part-{target.name}")  # Chromium chooses the format by the file's suffix
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)  # it holds the person's data: not for every reader of the disk
    produce(partial)
    if partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        raise PrintFailed(f"chromium wrote no {target.suffix.lstrip('.').upper()}")
    partial.replace(target)


def print_pdf(html: str, target: Path) -> None:
    """The letter as an A4 PDF (the page size and margins are the letter's own `@page`)."""
    _write(target, lambda out: _run(html, "--no-pdf-header-footer", f"--print-to-pdf={out}"))


def heights(pages: list[str], width: int = WIDTH) -> list[int]:
    """How tall each page is in a window `width` pixels wide, measured in one Chromium run: each page in a frame
    of that width, whose height the frame's parent writes into the document Chromium prints."""
    frames = "".join(f'<iframe style="width:{width}px;height:10px;border:0;display:block" '
                     f'srcdoc="{escape(page, quote=True)}"></iframe>' for page in pages)
    measuring = (f"<!doctype html><html><body style='margin:0'>{frames}<script>addEventListener('load',()=>"
                 "document.querySelectorAll('iframe').forEach(f=>f.setAttribute('data-letter-height',"
                 "Math.ceil(f.contentDocument.documentElement.scrollHeight))))</script></body></html>")
    found = [int(h) for h in _HEIGHTS.findall(_run(measuring, f"--window-size={width},800", "--dump-dom"))]
    if len(found) != len(pages):
        raise PrintFailed("chromium did not measure the letters")
    return found


def screenshots(pages: list[tuple[str, Path]], width: int = WIDTH) -> None:
    """Each letter as one PNG of the whole letter, as it shows in a browser window `width` pixels wide."""
    tall = heights([html for html, _ in pages], width)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda job: _write(job[1], lambda out: _run(
            job[0], f"--window-size={width},{min(job[2], 16000)}", f"--screenshot={out}")),
            [(html, target, height) for (html, target), height in zip(pages, tall, strict=True)]))


def screenshot(html: str, target: Path, width: int = WIDTH) -> None:
    screenshots([(html, target)], width)
