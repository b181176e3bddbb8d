"""Benchmarks a user can run on their own host.

- `backends`: the select / poll / epoll scaling measurement (the method of libevent's
  test/bench.c: a chain of one-byte writes through socketpairs registered for reading).
- `trigger`: the level- versus edge-triggered epoll experiment (a peer writes once, the server
  never reads; count the wakeups).
- `plot`: the optional PNG (matplotlib, the `plot` extra).

Each returns frozen pydantic models; `c10kplan.cli.bench` renders them.
"""
