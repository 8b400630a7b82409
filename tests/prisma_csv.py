"""What the PRISMA2020 app checks when it draws a template: the boxes add up."""

from __future__ import annotations


def assert_csv_adds_up(n: dict[str, str]) -> None:
    """The PRISMA2020 CSV's boxes add up as the PRISMA2020 app draws them (no records
    awaiting a decision)."""
    v = {k: int(x) for k, x in n.items() if x.lstrip("-").isdigit()}

    def reasons(key):
        return 0 if n[key] == "0" else sum(int(p.rsplit(", ", 1)[1]) for p in n[key].split("; "))

    assert v["previous_studies"] + v["new_studies"] == v["total_studies"]
    assert v["previous_reports"] + v["new_reports"] == v["total_reports"]
    other = v["website_results"] + v["organisation_results"] + v["citations_results"]
    drawn = v["database_results"] + v["register_results"]
    if v["other_sought_reports"] == 0 and drawn == 0:
        drawn += other  # other-methods records screened with the rest
    assert drawn - v["duplicates"] - v["excluded_automatic"] - v["excluded_other"] == \
        v["records_screened"]
    assert v["records_screened"] - v["records_excluded"] == v["dbr_sought_reports"]
    assert v["dbr_sought_reports"] - v["dbr_notretrieved_reports"] == v["dbr_assessed"]
    assert v["other_sought_reports"] - v["other_notretrieved_reports"] == v["other_assessed"]
    assert v["dbr_assessed"] - reasons("dbr_excluded") + v["other_assessed"] - \
        reasons("other_excluded") == v["new_reports"]
