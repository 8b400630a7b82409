"""The floor every package stands on: user errors, the `Record`, service names, the
version, the files and text commands write out.

`db`, `connectors`, `screeners`, `cluster` and `cli` may all import it; it
imports none of them.
"""
