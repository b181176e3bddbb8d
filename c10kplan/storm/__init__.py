"""The socket-storm client: many nonblocking connects, paced, spread over processes and source
addresses, holding connections with open-loop messages and HdrHistogram latencies.

    config.py   StormConfig, source-address specs, the split across processes
    setup.py    `auto` values from this host's limits
    pacing.py   the token bucket
    payload.py  messages and the replies expected byte for byte
    client.py   one process: ramp -> hold -> drain, one epoll loop
    runner.py   fork the processes, steer them, merge their results
    stats.py    latency recording and histograms
    result.py   ProcessResult, StormResult and the verdict
"""
