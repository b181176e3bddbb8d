"""64-byte echo, closed loop: `c10kplan serve` (epoll level / edge) vs asyncio and uvloop.

The SAME load client drives every server, alternating (the order rotates each round), for
--rounds rounds; the table shows the median requests/s and the ratios the issue asks for
(serve >= 1.0x uvloop, >= 1.3x asyncio). Every server is one process (serve: --workers 1).

Is the client the bottleneck? The client is ~60 lines of C (compiled with `cc` at start; --client
python for the raw-epoll Python one), pinned to the CPUs the server is not on (--no-pin to
let the scheduler place them). Look at the CPU columns: the server should be at ~100 % of its
core; if the client is at ~100 % too, re-run with --client-procs 2 and check the figures do not
rise. `server us/req` (server CPU time per request) is the least noise-sensitive figure.

What bounds all of them: per request every server makes one read and one write syscall
(`strace -c -p PID`), and on loopback the write runs the peer's TCP receive path, so ~80 % of
server CPU is kernel time (about 8-10 us of the 10-12 us per request measured here); user space
is ~2 us for serve and uvloop. asyncio reads with recv(256 KiB): while glibc's mmap threshold
is at its 128 KiB default every read costs mmap + mremap + munmap (strace shows one each per
request) and asyncio runs at ~1/3 speed; once the threshold adapts it runs near uvloop. Its
rounds are therefore bimodal; the median shows which mode dominated.

    python scripts/bench_echo.py                   # 100 connections, 5 rounds x 5 s
    python scripts/bench_echo.py --rounds 7 --duration 10 --client-procs 2
    # before / after a change, in the same rounds (ratios against the first tree):
    git worktree add --detach /tmp/old main
    cd /tmp && PYTHONPATH=$OLDPWD python $OLDPWD/scripts/bench_echo.py --only serve-level serve-edge \
        --tree old=/tmp/old --tree new=$OLDPWD
    # ... the table, one row per server@tree, then (2026-12-01, load avg 3-5 from other jobs):
    serve-level@new / serve-level@old = 1.298x (per round: 1.35 1.89 1.38 1.06 1.19 0.62 1.09); server us/req 0.973x
    serve-edge@new / serve-edge@old = 1.028x (per round: 1.10 0.41 0.90 1.39 0.52 1.16 2.56); server us/req 0.999x

Sample output (2 cores shared with other jobs; see the load average):

    bench_echo: 100 conns, 64 B, 5 rounds x 5.0 s, 1 C client proc(s); server pinned to CPU 0, clients to the rest; load avg 0.5 1.1 2.0
    server          req/s (median)  rounds                         server CPU  client CPU  server us/req
    serve-level            104,138  106,600 87,694 97,948 104,138 111,785        99%         91%           9.51
    serve-edge              85,608  67,364 88,871 119,123 85,608 84,581        99%         94%          11.59
    asyncio                 79,796  24,038 79,051 101,059 79,796 80,621        99%         86%          12.46
    uvloop                  98,506  98,506 85,358 92,928 121,332 106,261        97%         97%           9.81
    serve-level / uvloop = 1.06x   serve-level / asyncio = 1.31x
    serve-edge / uvloop = 0.87x   serve-edge / asyncio = 1.07x
    load avg after: 1.8 1.4 2.0
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import load_average_text

from c10kplan.reactor.launch import ServerProcess, process_cpu_seconds

# The default load client: ~60 lines of C (compiled with `cc` into a temp dir at start) so that
# the client spends far less CPU per request than any Python server; --client python uses the
# raw-epoll Python client below instead (for machines without a C compiler).
C_CLIENT = r"""
/* closed-loop echo load client: conns connections, each sends size bytes and waits for them back */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct rusage u; getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6; }
int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: host port conns size warmup duration\n"); return 2; }
  int conns = atoi(argv[3]), size = atoi(argv[4]);
  double warmup = atof(argv[5]), duration = atof(argv[6]);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  inet_pton(AF_INET, argv[1], &a.sin_addr);
  int ep = epoll_create1(0);
  int *left = calloc(65536, sizeof(int));
  char payload[65536], buf[65536];
  memset(payload, 'x', sizeof payload);
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 3; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    left[fd] = size;
    if (write(fd, payload, size) != size) { perror("write"); return 3; }
  }
  struct epoll_event evs[1024];
  double begin = now() + warmup, end = begin + duration, c0 = 0;
  long count = 0; int counting = 0;
  for (;;) {
    double t = now();
    if (!counting && t >= begin) { counting = 1; count = 0; c0 = cpu(); }
    if (t >= end) break;
    int n = epoll_wait(ep, evs, 1024, 50);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) { fprintf(stderr, "server closed a connection\n"); return 4; }
      left[fd] -= r;
      if (left[fd] <= 0) { count++; left[fd] = size; if (write(fd, payload, size) != size) return 4; }
    }
  }
  printf("%ld %f %f\n", count, duration, cpu() - c0);
  return 0;
}
"""


def build_c_client(workdir: str) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = os.path.join(workdir, "echo_client.c")
    exe = os.path.join(workdir, "echo_client")
    with open(src, "w") as fh:
        fh.write(C_CLIENT)
    res = subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True, text=True)
    return exe if res.returncode == 0 else None


# ----------------------------------------------------------------------------- servers
class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _asyncio_server(host: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_EchoProtocol, host, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {host}:{port}", flush=True)
    async with server:
        await stop.wait()


def run_reference_server(kind: str, host: str) -> None:
    if kind == "uvloop":
        import uvloop

        uvloop.run(_asyncio_server(host))
    else:
        asyncio.run(_asyncio_server(host))


class ReferenceServer:
    """asyncio / uvloop Protocol echo server in a child process (this script, --serve KIND)."""

    def __init__(self, kind: str, host: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--host", host], stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        self.port = int(line[1].rpartition(":")[2])
        self.cpu_pid = self.proc.pid

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class ServeServer:
    def __init__(self, trigger: str, tree: str | None = None) -> None:
        # --tree: serve imports c10kplan from that source tree. PYTHONSAFEPATH keeps `-m` from
        # putting the current directory (maybe another tree) ahead of PYTHONPATH.
        env = None if tree is None else {**os.environ, "PYTHONPATH": tree, "PYTHONSAFEPATH": "1"}
        self.srv = ServerProcess(["--backend", "epoll", "--trigger", trigger, "--workers", "1"], env=env)
        self.port = self.srv.port
        [self.cpu_pid] = self.srv.worker_pids()  # the worker does the work, not the supervisor

    def close(self) -> None:
        self.srv.close()


# ----------------------------------------------------------------------------- client
def client_process(host: str, port: int, conns: int, size: int, warmup: float, duration: float, out) -> None:
    """Closed loop: each connection sends `size` bytes, waits for all of them back, repeats."""
    ep = select.epoll()
    socks = []
    for _ in range(conns):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        ep.register(s.fileno(), select.EPOLLIN)
    payload = b"x" * size
    pending = {s.fileno(): size for s in socks}
    read, write, poll, clock = os.read, os.write, ep.poll, time.perf_counter
    for fd in pending:
        write(fd, payload)
    begin = clock() + warmup
    end = begin + duration
    count = 0
    counting = False
    cpu0 = os.times()
    while True:
        now = clock()
        if not counting and now >= begin:
            counting, count, cpu0 = True, 0, os.times()
        if now >= end:
            break
        for fd, _ev in poll(0.05):
            left = pending[fd] - len(read(fd, 65536))
            if left <= 0:
                count += 1
                pending[fd] = size
                write(fd, payload)
            else:
                pending[fd] = left
    cpu1 = os.times()
    out.send((count, duration, (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)))
    for s in socks:
        s.close()


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(pid, cpus)


def drive(host: str, port: int, cpu_pid: int, args) -> tuple[float, float, float]:
    """One measured run: (requests/s, server CPU %, client CPU % summed over client procs)."""
    per = [args.connections // args.client_procs + (i < args.connections % args.client_procs)
           for i in range(args.client_procs)]
    if args.client_exe:
        procs = [subprocess.Popen([args.client_exe, host, str(port), str(n), str(args.size),
                                   str(args.warmup), str(args.duration)], stdout=subprocess.PIPE, text=True)
                 for n in per]
        for p in procs:
            pin(p.pid, args.client_cpus)
        collect = lambda: [tuple(float(x) for x in p.communicate(timeout=60)[0].split()) for p in procs]  # noqa: E731
    else:
        ctx = mp.get_context("fork")
        pipes, mprocs = [], []
        for n in per:
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=client_process, args=(host, port, n, args.size, args.warmup, args.duration, w))
            p.start()
            pin(p.pid, args.client_cpus)
            pipes.append(r)
            mprocs.append(p)

        def collect():
            out = [r.recv() for r in pipes]
            for p in mprocs:
                p.join(10)
            return out
    time.sleep(args.warmup)
    s0 = process_cpu_seconds(cpu_pid)
    time.sleep(args.duration)
    s1 = process_cpu_seconds(cpu_pid)
    results = collect()
    if any(len(r) != 3 for r in results):
        raise SystemExit(f"a load client failed: {results}")
    reqs = sum(c for c, _, _ in results) / args.duration
    client_cpu = sum(cpu for _, _, cpu in results) / args.duration
    return reqs, 100 * (s1 - s0) / args.duration, 100 * client_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--client", choices=["c", "python"], default="c",
                    help="load client: C (default; falls back to python without a compiler)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the server to CPU 0 and the clients to the other CPUs")
    ap.add_argument("--only", nargs="*", help="subset of: serve-level serve-edge asyncio uvloop")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                    help="run serve-* from this source tree as serve-*@NAME (repeat to compare "
                         "trees, e.g. before / after a change; ratios are against the first)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run a reference server
    args = ap.parse_args()
    if args.serve:
        run_reference_server(args.serve, args.host)
        return

    names = args.only or ["serve-level", "serve-edge", "asyncio", "uvloop"]
    trees = dict(t.split("=", 1) for t in args.tree)
    if trees:
        names = [f"{n}@{t}" for n in names if n.startswith("serve-") for t in trees] + [
            n for n in names if not n.startswith("serve-")]
    servers = {}
    workdir = tempfile.TemporaryDirectory(prefix="bench-echo-")
    args.client_exe = build_c_client(workdir.name) if args.client == "c" else None
    client_name = "C" if args.client_exe else "python raw-epoll"
    cpus = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and len(cpus) >= 2
    args.client_cpus = set(cpus[1:]) if pinned else None
    try:
        for name in names:
            if name.startswith("serve-"):
                trigger, _, tree = name.removeprefix("serve-").partition("@")
                servers[name] = ServeServer(trigger, trees.get(tree))
            else:
                servers[name] = ReferenceServer(name, args.host)
            pin(servers[name].cpu_pid, {cpus[0]} if pinned else None)
        load = load_average_text()
        print(f"bench_echo: {args.connections} conns, {args.size} B, {args.rounds} rounds x "
              f"{args.duration} s, {args.client_procs} {client_name} client proc(s); "
              f"{'server pinned to CPU %d, clients to the rest' % cpus[0] if pinned else 'not pinned'}; load avg {load}")
        runs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[: rnd % len(names)]  # rotate the order
            for name in order:
                srv = servers[name]
                runs[name].append(drive(args.host, srv.port, srv.cpu_pid, args))
    finally:
        for srv in servers.values():
            srv.close()
        workdir.cleanup()

    med = {n: statistics.median(r for r, _, _ in runs[n]) for n in names}
    us_med: dict[str, float] = {}
    print(f"{'server':<14}{'req/s (median)':>16}  {'rounds':<30}{'server CPU':>11}{'client CPU':>12}"
          f"{'server us/req':>15}")
    for n in names:
        rounds = " ".join(f"{r:,.0f}" for r, _, _ in runs[n])
        scpu = statistics.median(s for _, s, _ in runs[n])
        ccpu = statistics.median(c for _, _, c in runs[n])
        # CPU time the server spent per request: less sensitive to other load than req/s.
        us = us_med[n] = statistics.median(1e4 * s / r for r, s, _ in runs[n] if r)
        print(f"{n:<14}{med[n]:>16,.0f}  {rounds:<30}{scpu:>10.0f}%{ccpu:>11.0f}%{us:>15.2f}")
    for n in names:
        if n.startswith("serve-"):
            parts = [f"{n} / {ref} = {med[n] / med[ref]:.2f}x" for ref in ("uvloop", "asyncio") if ref in med]
            base, _, tree = n.partition("@")
            first = f"{base}@{next(iter(trees))}" if trees else n
            if first != n:  # the same rounds, so the ratio cancels most of the machine's drift
                ratios = [r / r0 for (r, _, _), (r0, _, _) in zip(runs[n], runs[first]) if r0]
                parts.append(f"{n} / {first} = {med[n] / med[first]:.3f}x "
                             f"(per round: {' '.join(f'{x:.2f}' for x in ratios)}); "
                             f"server us/req {us_med[n] / us_med[first]:.3f}x")
            if parts:
                print("   ".join(parts))
    print(f"load avg after: {load_average_text()}")


if __name__ == "__main__":
    main()
