"""A spider for a GePNIC-style portal: organisations, then each one's result pages of tenders.

    scrapy crawl gepnic -a portal_name="Goa eProcurement"

It crawls the organisations in order, one result page at a time, and tells the run where it is
(``self.tracked_run.cursor``), so that a crawl started after a crash, a kill or Ctrl-C resumes
the same run: it skips the organisations and pages done and the tenders already stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response


class GepnicSpider(scrapy.Spider):
    name = "gepnic"
    portal_name = "Goa eProcurement"  # the run's portal; `-a portal_name=...` for another

    def __init__(self, *args: Any, as_of: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The portal's day (the synthetic portal changes with it): today unless given.
        self.as_of = date.fromisoformat(as_of) if as_of else date.today()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        cursor = self.tracked_run.cursor  # where a resumed run left off (None: from the start)
        if isinstance(cursor, dict) and cursor.get("as_of"):
            self.as_of = date.fromisoformat(cursor["as_of"])  # a resumed run keeps its day
        yield scrapy.Request(self.url("organisations"), callback=self.parse_organisations)

    def parse_organisations(self, response: Response) -> Iterator[scrapy.Request]:
        organisations = response.css("a.organisation::text").getall()
        number, page = self.resume_point(organisations)
        yield self.result_page(organisations, number, page)

    def parse_tenders(
        self, response: Response, organisations: list[str], number: int, page: int
    ) -> Iterator[dict[str, Any] | scrapy.Request]:
        run = self.tracked_run
        # Pages before this one are done: a resume starts here. (Set on arrival, not after
        # the items below: Scrapy stores those after this method has moved on.)
        run.cursor = {
            "organisation": organisations[number - 1],
            "page": page,
            "as_of": self.as_of.isoformat(),
        }
        organisation = response.css("h2.organisation::text").get()
        for row in response.css("tr.tender"):
            tender = {
                "tender_id": row.css("td.tender-id::text").get(),
                "reference_number": row.css("td.reference::text").get(),
                "title": row.css("td.title::text").get(),
                "organisation": organisation,
                "category": row.css("td.category::text").get(),
                "value_inr": float(row.css("td.value::text").get()),
                "published_date": row.css("td.published::text").get(),
                "closing_date": row.css("td.closing::text").get(),
            }
            if tender["tender_id"] not in run.seen_tender_ids:  # stored before a crash
                yield tender
        if response.css("a.next"):
            yield self.result_page(organisations, number, page + 1)
        elif number < len(organisations):
            yield self.result_page(organisations, number + 1, 1)

    def resume_point(self, organisations: list[str]) -> tuple[int, int]:
        """(organisation number, page) to start at: the cursor's, else the first page."""
        cursor = self.tracked_run.cursor
        if isinstance(cursor, dict) and cursor.get("organisation") in organisations:
            number = organisations.index(cursor["organisation"]) + 1
            self.logger.info("resuming at organisation %d, page %d", number, cursor["page"])
            return number, cursor["page"]
        return 1, 1

    def result_page(self, organisations: list[str], number: int, page: int) -> scrapy.Request:
        return scrapy.Request(
            self.url("tenders", organisation=number, page=page),
            callback=self.parse_tenders,
            cb_kwargs={"organisations": organisations, "number": number, "page": page},
        )

    def url(self, path: str, **query: int) -> str:
        base = self.settings.get("PORTAL_URL").rstrip("/")
        query_string = urlencode(
            {"portal": self.portal_name, "as_of": self.as_of.isoformat(), **query}
        )
        return f"{base}/{path}?{query_string}"
