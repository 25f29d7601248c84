"""A local stand-in for a GePNIC tender portal, so the Scrapy example runs offline.

    python examples/scrapy_portal/portal_server.py --port 8765

It serves the demo's synthetic portals (``cleanup_core.demo.synthetic_portal``: the same
organisations, result pages and tenders for one portal name and day), any portal name, any day:

    /organisations?portal=NAME&as_of=YYYY-MM-DD                  the organisation list
    /tenders?portal=NAME&as_of=YYYY-MM-DD&organisation=N&page=P   a result page (N, P from 1)
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from functools import lru_cache
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cleanup_core.demo import SyntheticPortal, synthetic_portal

log = logging.getLogger("portal_server")


class NotFound(Exception):
    """The request names no page of the portal; the message says why."""


@lru_cache(maxsize=32)
def portal(name: str, as_of: date) -> SyntheticPortal:
    return synthetic_portal(name, as_of=as_of)


def organisations_page(query: dict[str, str]) -> str:
    site = portal(*_portal_and_day(query))
    rows = "".join(
        f'<tr><td>{number}</td><td><a class="organisation" href="/tenders?'
        f'{escape(urlencode({**query, "organisation": number, "page": 1}))}">'
        f"{escape(organisation.chain)}</a></td></tr>"
        for number, organisation in enumerate(site.organisations, start=1)
    )
    return _document(
        f"{site.name}: tenders by organisation",
        f"<table><tr><th>S.No</th><th>Organisation Name</th></tr>{rows}</table>",
    )


def tenders_page(query: dict[str, str]) -> str:
    site = portal(*_portal_and_day(query))
    number, page = _number(query, "organisation"), _number(query, "page")
    if number > len(site.organisations):
        raise NotFound(f"{site.name} has {len(site.organisations)} organisations")
    organisation = site.organisations[number - 1]
    if page > len(organisation.pages):
        raise NotFound(f"organisation {number} has {len(organisation.pages)} result pages")
    rows = "".join(_tender_row(tender) for tender in organisation.pages[page - 1])
    following = ""
    if page < len(organisation.pages):
        link = urlencode({**query, "page": page + 1})
        following = f'<a class="next" href="/tenders?{escape(link)}">Next</a>'
    return _document(
        f"{site.name}: tenders of {organisation.chain}",
        f'<h2 class="organisation">{escape(organisation.chain)}</h2>'
        f"<table><tr><th>Tender ID</th><th>Reference No</th><th>Title</th><th>Category</th>"
        f"<th>Value (INR)</th><th>e-Published Date</th><th>Closing Date</th></tr>{rows}</table>"
        f'<p class="pager">Page {page} of {len(organisation.pages)} {following}</p>',
    )


def _tender_row(tender: dict[str, Any]) -> str:
    cells = (
        ("tender-id", tender["tender_id"]),
        ("reference", tender["reference_number"]),
        ("title", tender["title"]),
        ("category", tender["category"]),
        ("value", repr(tender["value_inr"])),
        ("published", tender["published_date"]),
        ("closing", tender["closing_date"]),
    )
    return (
        '<tr class="tender">'
        + "".join(f'<td class="{name}">{escape(str(value))}</td>' for name, value in cells)
        + "</tr>"
    )


def _document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _portal_and_day(query: dict[str, str]) -> tuple[str, date]:
    name = query.get("portal", "").strip()
    if not name:
        raise NotFound("which portal? add ?portal=NAME")
    try:
        day = date.fromisoformat(query.get("as_of", ""))
    except ValueError:
        raise NotFound("which day? add &as_of=YYYY-MM-DD") from None
    return name, day


def _number(query: dict[str, str], name: str) -> int:
    text = query.get(name, "")
    if not text.isdigit() or int(text) < 1:
        raise NotFound(f"{name} must be a number from 1, got {text!r}")
    return int(text)


PAGES = {"/organisations": organisations_page, "/tenders": tenders_page}


class PortalHandler(BaseHTTPRequestHandler):
    """GET only; every other path or a bad query is a 404 with the reason."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        render = PAGES.get(url.path)
        try:
            if render is None:
                raise NotFound(f"no page {url.path}; try /organisations?portal=NAME&as_of=DAY")
            status, body = HTTPStatus.OK, render(query)
        except NotFound as missing:
            status, body = HTTPStatus.NOT_FOUND, _document("Not found", escape(str(missing)))
        content = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(
    host: str = "127.0.0.1", port: int = 8765, handler: type[PortalHandler] = PortalHandler
) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (0 picks a free port), not yet serving."""
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    host, port = server.server_address[:2]
    log.info("serving the synthetic portals on http://%s:%d/organisations", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
