"""The bundled reactor server behind `c10kplan serve`.

    backends/   select / poll / epoll behind register / modify / unregister / poll
    protocols   echo, rot13 (line-oriented), discard: bytes in, bytes out
    server      Reactor: one worker's loop (accept, read, write, one close path)
    workers     Supervisor: N forked workers with SO_REUSEPORT listeners, signals, stats
    stats       the per-worker counters and the atomically replaced stats file
    config      ServeConfig (validated options) and the worker arithmetic
    launch      ServerProcess: run `c10kplan serve` as a child (benchmarks, tests, verify)
"""
