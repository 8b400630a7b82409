"""The demo's simulated review world, kept apart from the product: a world
generator (`world`), the four services it answers as (`services`, with the
PubMed query parser in `query`), the loopback HTTP server they run on
(`loopback`), and the whole review run against them (`run`, behind `cluster
demo`). Only the CLI's `demo` command, the tests and the benchmarks import it.
"""
