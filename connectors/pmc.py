"""PubMed Central: PMCIDs for PMIDs and DOIs (the PMC ID converter) and the open-access
files of a PMC article (the PMC OA web service, `oa/oa.fcgi?id=PMC...`).

The ID converter takes up to 200 ids a call (`ids=a,b&format=json`) and lists
a record per id, with an `errmsg` for the ones PMC does not hold. The OA
service answers one id a call: `<record>` with `<link format="pdf|tgz"
href="ftp://...">` for an article in the OA subset, `<error
code="idIsNotOpenAccess">` for one outside it, `idDoesNotExist` for an unknown
id. FTP links are fetched over HTTPS from the same NCBI host. Every article in
the OA subset can also be read as PMC XML through E-utilities
(`efetch.fcgi?db=pmc`), offered as a location of its own.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping, Sequence

from base.errors import InvalidInput, RequestRejected
from base.record import normalize_doi, normalize_pmid
from connectors.http import BadBody, CallLog, HttpLayer, parse_json
from connectors.locations import Located, Location, https_ftp, locate_each

SERVICE = "pmc"
NAME = "PubMed Central"
IDCONV_BATCH = 200


def normalize_pmcid(value: Any) -> str | None:
    m = re.fullmatch(r"\s*(?:pmc)?\s*(\d+)(?:\.\d+)?\s*", str(value or ""), flags=re.IGNORECASE)
    return f"PMC{m.group(1)}" if m else None


def parse_idconv(body: bytes) -> Mapping:
    data = parse_json(body)
    if not isinstance(data, Mapping) or not isinstance(data.get("records"), list):
        if isinstance(data, Mapping) and data.get("status") == "error":
            raise RequestRejected(NAME, f"The PMC ID converter refused the request "
                                        f"({data.get('message') or 'no reason given'}): check "
                                        f"the identifiers.")
        raise BadBody("not a PMC ID converter answer")
    return data


def _safe_xml(body: bytes) -> ET.Element:
    # the OA service never declares a DTD; one that does is not its answer (and entity
    # expansion is the classic way to make a small XML body huge)
    if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body:
        raise BadBody("an XML document with a DTD where the PMC OA service sends none")
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise BadBody("not a whole XML document") from None


def parse_oa(body: bytes) -> ET.Element:
    root = _safe_xml(body)
    if root.tag != "OA":
        raise BadBody("not a PMC OA service answer")
    return root


def oa_locations(root: ET.Element, pmcid: str, efetch_url: str | None
                 ) -> tuple[Location, ...] | None:
    """The locations in one OA answer; None when PMC does not know the id."""
    error = root.find("error")
    if error is not None:
        code = error.get("code") or ""
        if code == "idDoesNotExist":
            return None
        if code == "idIsNotOpenAccess":
            return ()
        raise RequestRejected(NAME, f"The PMC OA service refused {pmcid} ({code}: "
                                    f"{(error.text or '').strip()}): check the PMCID.")
    out: list[Location] = []
    for record in root.iter("record"):
        licence = record.get("license") or None
        for link in record.iter("link"):
            href = link.get("href")
            if link.get("format") == "pdf" and href:
                out.append(Location(SERVICE, https_ftp(href), "pdf", None, licence, "repository"))
        if efetch_url:
            out.append(Location(SERVICE, f"{efetch_url}?db=pmc&id={pmcid[3:]}", "xml", None,
                                licence, "repository"))
    return tuple(out)


class PubMedCentral:
    """The PMC ID converter and OA web service over the shared HTTP layer."""

    def __init__(self, http: HttpLayer):
        self.http = http

    def pmcids(self, ids: Sequence[str]) -> tuple[dict[str, str], tuple[CallLog, ...]]:
        """{PMID or DOI asked for: PMCID} for those PMC holds (others are left out)."""
        wanted = [x for x in dict.fromkeys(str(i).strip() for i in ids)
                  if normalize_pmid(x) == x or normalize_doi(x)]
        found: dict[str, str] = {}
        calls: list[CallLog] = []
        for i in range(0, len(wanted), IDCONV_BATCH):
            batch = wanted[i:i + IDCONV_BATCH]
            data, call = self.http.request(
                SERVICE, "idconv", "/idconv/v1.0/", [("ids", ",".join(batch)), ("format", "json")],
                parse=parse_idconv, count=lambda d: sum(1 for r in d["records"]
                                                       if isinstance(r, Mapping) and r.get("pmcid")))
            calls.append(call)
            asked = {x.lower(): x for x in batch}
            for rec in data["records"]:
                if not isinstance(rec, Mapping) or not rec.get("pmcid"):
                    continue
                pmcid = normalize_pmcid(rec["pmcid"])
                for key in (str(rec.get("pmid") or ""), normalize_doi(rec.get("doi")) or "",
                            str(rec.get("requested-id") or "")):
                    if pmcid and key.lower() in asked:
                        found[asked[key.lower()]] = pmcid
        return found, tuple(calls)

    def locations(self, pmcids: Sequence[str], *, efetch_url: str | None = None) -> Located:
        """OA files per PMCID (none outside the OA subset); unknown PMCIDs in `missing`.

        `efetch_url` (E-utilities' efetch.fcgi) adds each OA article's PMC XML.
        """
        failed: dict[str, str] = {}
        wanted: list[str] = []
        for raw in pmcids:
            pmcid = normalize_pmcid(raw)
            if pmcid is None:
                failed[str(raw)] = f"{raw!r} is not a PMCID (such as PMC2883744): check it."
            elif pmcid not in wanted:
                wanted.append(pmcid)
        if not wanted and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))

        def ask(pmcid: str) -> tuple[tuple[Location, ...] | None, CallLog]:
            root, call = self.http.request(SERVICE, "oa", "/oa/oa.fcgi", [("id", pmcid)],
                                           parse=parse_oa, expect="xml",
                                           count=lambda r: len(list(r.iter("record"))))
            return oa_locations(root, pmcid, efetch_url), call

        return locate_each(wanted, ask, failed)
