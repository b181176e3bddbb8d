"""Real third-party servers for the protocol tests, each started in a temp prefix on a loopback
port picked free, waited for until it listens (a condition, no fixed sleep), stopped by its PID.

- nginx (Debian package): `nginx -p PREFIX -c nginx.conf -g 'daemon off;'`.
- the `websockets` library's echo server (PyPI), as a subprocess of this interpreter.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import wait_for

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host: str, port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Until a connect to host:port succeeds; RuntimeError if the server died."""

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode} (see its log in the test prefix)")
        try:
            socket.create_connection((host, port), timeout=0.5).close()  # ::1 too
        except OSError:
            return False
        return True

    if not wait_for(listening, timeout):
        raise RuntimeError(f"server did not listen on {host}:{port} within {timeout} s")


def start_listening(argv: list[str], log_path, host: str, port: int) -> subprocess.Popen:
    """Start a third-party server with its stderr in `log_path` and wait until it listens on
    host:port; stopped again (by PID) if it never does."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_listening(host, port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM (nginx: fast shutdown) by PID, SIGKILL if it lingers; always reaped."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class Nginx:
    """nginx in `prefix`, serving `GET /` -> 200 "ok\\n" (keep-alive) and /missing -> 404."""

    def __init__(self, prefix: Path, *, keepalive_timeout: float = 75, header_timeout: float = 60,
                 worker_connections: int = 12000, ipv6: bool = False) -> None:
        self.prefix = prefix
        self.host = "127.0.0.1"
        self.port = free_port()
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        listen = f"listen 127.0.0.1:{self.port};" + (f" listen [::1]:{self.port};" if ipv6 else "")
        # worker_rlimit_nofile: nginx's own fd limit, within the host's hard nofile (20000 here).
        conf = textwrap.dedent(f"""
            worker_processes 1;
            worker_rlimit_nofile 19000;
            pid {prefix}/nginx.pid;
            error_log {prefix}/logs/error.log warn;
            events {{ worker_connections {worker_connections}; }}
            http {{
                access_log off;
                client_body_temp_path {prefix}/tmp/body;
                proxy_temp_path {prefix}/tmp/proxy;
                fastcgi_temp_path {prefix}/tmp/fastcgi;
                uwsgi_temp_path {prefix}/tmp/uwsgi;
                scgi_temp_path {prefix}/tmp/scgi;
                keepalive_timeout {round(keepalive_timeout * 1000)}ms;
                keepalive_requests 1000000;
                client_header_timeout {round(header_timeout * 1000)}ms;
                default_type text/plain;
                server {{
                    {listen}
                    location = / {{ return 200 "ok\\n"; }}
                    location / {{ return 404; }}
                }}
            }}
        """)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(conf)
        self.proc = start_listening([NGINX, "-p", str(prefix), "-c", str(self.conf), "-g", "daemon off;"],
                                    prefix / "logs" / "stderr.log", self.host, self.port)

    def close(self) -> None:
        stop(self.proc)


WS_ECHO = textwrap.dedent("""
    import asyncio, sys
    from websockets.asyncio.server import serve

    CLOSE_AFTER = float(sys.argv[2])  # > 0: the server closes every connection (1001) after this many s
    MAX_SIZE = int(sys.argv[3])  # bytes of the largest message taken; past it: close 1009

    async def echo(ws):
        if CLOSE_AFTER > 0:
            async def closer():
                await asyncio.sleep(CLOSE_AFTER)
                await ws.close(1001, "going away")
            asyncio.get_running_loop().create_task(closer())
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", int(sys.argv[1]), ping_interval=None, max_queue=None, max_size=MAX_SIZE,
                         compression=None, backlog=4096):
            print("listening", flush=True)
            await asyncio.Future()

    asyncio.run(main())
""")


class WebSocketsEcho:
    """The `websockets` library's asyncio server echoing every message, on a free port."""

    def __init__(self, tmp: Path, *, close_after: float = 0.0, max_size: int = 1 << 20) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        script = tmp / "ws_echo.py"
        script.write_text(WS_ECHO)
        # Its fds: one per connection, under the hard limit (raised from the soft one).
        code = ("import resource as r; s,h=r.getrlimit(r.RLIMIT_NOFILE); r.setrlimit(r.RLIMIT_NOFILE,(h,h));"
                f"import runpy, sys; sys.argv=[{str(script)!r}, {str(self.port)!r}, {str(close_after)!r}, {str(max_size)!r}];"
                f"runpy.run_path({str(script)!r}, run_name='__main__')")
        self.log = tmp / "ws_echo.log"  # a file, not a pipe: a full pipe would stall the server
        self.proc = start_listening([sys.executable, "-c", code], self.log, self.host, self.port)

    def close(self) -> None:
        stop(self.proc)
