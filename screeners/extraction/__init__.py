"""Data extraction and appraisal from the included records.

One module per step, each taking and returning plain data: `form` (the
documented TOML form and its checks), `answers` (one event per field answered),
`session` (one reviewer's blind walk in the terminal), `congruence` (agreement
between extractors, field by field), `consensus` (disagreements and the answers
that settle them), `export` (the evidence table), `importing` (answers from a
spreadsheet) and `report` (the methods sentence and the table of included
studies' characteristics).
"""
