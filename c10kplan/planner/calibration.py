"""Measured per-connection and per-message costs that override the planner's constants.

`verify --calibrate FILE` writes one after holding N real connections; `check/plan --calibration
FILE` read it. The file is the JSON dump of `Calibration`.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.boundedread import CALIBRATION_LIMIT, PrintableStr
from c10kplan.counts import errno_name
from c10kplan.errors import EnvironmentProblem
from c10kplan.files import atomic_write
from c10kplan.numeric import FloatRange, Int, IntRange

BytesPerConnection = IntRange(0, 1 << 40)
UsPerMessage = FloatRange(gt=0, le=1e6)  # microseconds


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kernel_bytes_per_socket: Int = Field(gt=0, le=1 << 24, description="bytes of kernel memory per idle TCP socket")
    user_bytes_per_connection: BytesPerConnection | None = Field(
        None, description="bytes of process memory per connection")
    # CPU time (user + system) per echo round trip; None = the constants of planner/cpu.py.
    # Files written before these fields existed load with None.
    server_cpu_us_per_message: UsPerMessage | None = Field(
        None, description="microseconds of server CPU per message (echo round trip)")
    client_cpu_us_per_message: UsPerMessage | None = Field(
        None, description="microseconds of load-client CPU per message (echo round trip)")
    connections: Int = Field(ge=1, le=100_000_000, description="connections held while measuring")
    # Text from the file is printed in the plan's working: kept printable (no ANSI escapes).
    kernel_release: Annotated[PrintableStr, Field(max_length=256)] | None = None
    measured_at: PrintableStr = Field(max_length=64, description="ISO 8601 time of the measurement")
    method: PrintableStr = Field(max_length=1024, description="how it was measured, for the report")

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON file atomically (temp file, fsync, rename; parent directories created).
        Raises EnvironmentProblem naming the path and errno when it cannot be written."""
        try:
            atomic_write(path, self.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise EnvironmentProblem(f"--calibrate {os.fspath(path)}: cannot write: "
                                     f"{errno_name(exc.errno)} ({exc.strerror or exc})") from None


def calibration_source(cal: Calibration) -> str:
    """Where a calibrated figure comes from, for the plan's working."""
    return f"calibration: {cal.method} ({cal.connections:,} connections, {cal.measured_at})"


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration file. Raises HostFactsError (exit 2) when missing or malformed."""
    from c10kplan.host.jsonfile import load_model_file

    return load_model_file(Calibration, path, "--calibration", CALIBRATION_LIMIT)
