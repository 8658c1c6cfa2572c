"""`python -m training launch --workers N -- dcgan ...`: N local workers of one MultiWorkerMirroredStrategy cluster.

Each worker is the same training command in its own process with its own TF_CONFIG (localhost ports found
here). The launcher forwards SIGINT/SIGTERM to every worker (they agree on the step, save and exit), writes
one log per worker, relays the chief's output, and when a worker dies it stops the others and says in one
line which worker died and how. A restart of the same command with --resume continues at the saved step.
For several hosts, run the command on each host with TF_CONFIG set by hand (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LAUNCHABLE = ("dcgan",)
INTERRUPTED = {128 + signal.SIGINT: "SIGINT", 128 + signal.SIGTERM: "SIGTERM"}


@dataclass(frozen=True)
class LaunchConfig:
    workers: int
    log_dir: Path
    host: str = "127.0.0.1"
    gpus_per_worker: int = 0  # 0: every worker sees every GPU; K: worker i sees GPUs i*K .. i*K+K-1
    grace_seconds: float = 120.0  # how long the others may take to follow a worker that finished or stopped
    kill_seconds: float = 10.0  # SIGTERM, then SIGKILL after this long, for workers that must go

    def __post_init__(self):
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers {self.workers} is outside the allowed range 1..64")
        if not 0 <= self.gpus_per_worker <= 16:
            raise ValueError(f"gpus_per_worker {self.gpus_per_worker} is outside the allowed range 0..16")
        if not 1 <= self.grace_seconds <= 86400 or not 0.1 <= self.kill_seconds <= 3600:
            raise ValueError("grace_seconds must lie in 1..86400 and kill_seconds in 0.1..3600")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel says are free now (all held open together, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(addresses: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def worker_environment(base: dict, addresses: list[str], index: int, gpus_per_worker: int = 0) -> dict:
    environment = {**base, "TF_CONFIG": tf_config(addresses, index)}
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpus_per_worker:
        first = index * gpus_per_worker
        environment["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in range(first, first + gpus_per_worker))
    return environment


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    if returncode in INTERRUPTED:
        return f"stopped on {INTERRUPTED[returncode]} (checkpoint saved)"
    return f"exited with status {returncode}"


def last_line(path: Path) -> str:
    """The last non-empty line of a log (progress bars and carriage returns stripped)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.split("\r")[-1].strip() for line in tail.splitlines()]
    return next((line for line in reversed(lines) if line), "")


def parent_death_signal():
    """A function for the child to call between fork and exec so that it gets SIGTERM when the launcher dies
    (Linux's PR_SET_PDEATHSIG): no worker outlives a killed launcher. None where there is no such call.

    Resolved here, in the parent: the child of a threaded process must not import anything.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)


class Worker:
    """One worker process and its log; the chief's output is also relayed to the launcher's streams."""

    def __init__(self, index: int, argv: list[str], environment: dict, log_path: Path, relay: bool):
        self.index, self.log_path = index, log_path
        self.log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed in close(), after the process ends
        self.log.write(f"=== worker {index} started {time.strftime('%Y-%m-%d %H:%M:%S')}: {argv}\n".encode())
        self.lock = threading.Lock()
        self.muted = threading.Event()  # set once the launcher reports: the log keeps the rest
        # The chief's own "error:" lines wait for the launcher's verdict: when a peer died first they are
        # consequences (lost contact), and the launcher's one line names the cause instead.
        self.held_errors: list[bytes] = []
        output = subprocess.PIPE if relay else self.log
        self.process = subprocess.Popen(
            argv, env=environment, stdout=output, stderr=subprocess.PIPE if relay else subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=parent_death_signal(),
        )
        self.threads = []
        if relay:
            for pipe, stream in ((self.process.stdout, sys.stdout), (self.process.stderr, sys.stderr)):
                thread = threading.Thread(target=self.tee, args=(pipe, stream), daemon=True)
                thread.start()
                self.threads.append(thread)

    def tee(self, pipe, stream) -> None:
        pending = b""
        for chunk in iter(lambda: pipe.read1(65536), b""):
            with self.lock:
                self.log.write(chunk)
            if self.muted.is_set():
                continue
            pending, ready = hold_error_lines(pending + chunk, self.held_errors)
            write_to(stream, ready)
        if pending and not self.muted.is_set():
            ready, error = error_tail(pending)
            write_to(stream, ready)
            if error:
                self.held_errors.append(error + b"\n")

    def release_held_errors(self, stream) -> None:
        """Relay the held "error:" lines after all: nobody else's failure explains them."""
        write_to(stream, b"".join(self.held_errors))
        self.held_errors.clear()

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
        self.log.close()


ERROR_PREFIX = b"error:"


def hold_error_lines(data: bytes, held: list[bytes]) -> tuple[bytes, bytes]:
    """Split relayed output into (an unfinished line kept back, what may be written now); whole lines that
    start with "error:" go to `held`, also where a progress bar's carriage return precedes them on the line. A
    progress bar's unfinished line passes at once, an error's waits."""
    lines = data.split(b"\n")
    unfinished = lines.pop()
    ready = []
    for line in lines:
        before, error = error_tail(line)
        ready.append(before if error else line + b"\n")
        if error:
            held.append(error + b"\n")
    last = unfinished.rpartition(b"\r")[2]
    if last and ERROR_PREFIX.startswith(last[: len(ERROR_PREFIX)]):
        return unfinished, b"".join(ready)
    return b"", b"".join(ready) + unfinished


def error_tail(line: bytes) -> tuple[bytes, bytes]:
    """(what precedes, the error) when the line's last carriage-return segment is an "error:" line (a progress
    bar may precede it on the same line), else (the line, b"")."""
    before, separator, last = line.rpartition(b"\r")
    return (before + separator, last) if last.startswith(ERROR_PREFIX) else (line, b"")


def write_to(stream, data: bytes) -> None:
    if not data:
        return
    if hasattr(stream, "buffer"):
        stream.buffer.write(data)
    else:
        stream.write(data.decode("utf-8", "replace"))
    stream.flush()


def stop_all(workers: list[Worker], kill_seconds: float) -> None:
    """SIGTERM the workers still running, SIGKILL those still there `kill_seconds` later."""
    for worker in workers:
        worker.signal(signal.SIGTERM)
    deadline = time.monotonic() + kill_seconds
    while any(worker.process.poll() is None for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    for worker in workers:
        worker.signal(signal.SIGKILL)
        worker.process.wait()


def start_workers(argv: list[str], config: LaunchConfig, environment: dict | None = None) -> list[Worker]:
    config.log_dir.mkdir(parents=True, exist_ok=True)
    addresses = [f"{config.host}:{port}" for port in free_ports(config.workers, config.host)]
    base = dict(os.environ if environment is None else environment)
    return [
        Worker(index, argv, worker_environment(base, addresses, index, config.gpus_per_worker),
               config.log_dir / f"worker-{index}.log", relay=index == 0)
        for index in range(config.workers)
    ]


def supervise(workers: list[Worker], config: LaunchConfig) -> int:
    """Wait for the workers; forward signals; on a failure stop the rest and report it in one line."""
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        for worker in workers:
            worker.signal(signum if len(received) == 1 else signal.SIGKILL)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        first_exit = None
        while True:
            codes = [worker.process.poll() for worker in workers]
            failed = first_failure(workers, codes)
            if failed is not None and not received:
                return report_failure(failed, workers, config)
            if all(code is not None for code in codes):
                for worker in workers:
                    worker.close()
                    worker.release_held_errors(sys.stderr)
                return summarise(workers, codes, received)
            if first_exit is None and any(code is not None for code in codes):
                first_exit = time.monotonic()
            if first_exit is not None and time.monotonic() - first_exit > config.grace_seconds:
                late = [worker.index for worker, code in zip(workers, codes, strict=True) if code is None]
                stop_all(workers, config.kill_seconds)
                print(f"error: worker(s) {', '.join(map(str, late))} did not follow the others within "
                      f"{config.grace_seconds:.0f} s and were stopped; logs in {config.log_dir}", file=sys.stderr)
                return 1
            time.sleep(0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for worker in workers:
            worker.close()


def first_failure(workers: list[Worker], codes: list[int | None]) -> Worker | None:
    """The worker whose failure explains the others': one killed by a signal before one that exited with an
    error (its peers exit with "lost contact" once it is gone)."""
    failures = [(code > 0, worker.index, worker) for worker, code in zip(workers, codes, strict=True)
                if code is not None and code != 0 and code not in INTERRUPTED]
    return min(failures, key=lambda failure: failure[:2])[2] if failures else None


def report_failure(failed: Worker, workers: list[Worker], config: LaunchConfig) -> int:
    others = [worker for worker in workers if worker is not failed and worker.process.poll() is None]
    for worker in workers:
        worker.muted.set()  # the survivors' complaints about the lost peer go to their logs, not over this line
    stop_all(others, config.kill_seconds)
    code = failed.process.returncode
    # A worker that exited by itself said why in its last line; one that was killed left the run resumable.
    detail = f" ({last_line(failed.log_path)})" if code > 0 and last_line(failed.log_path) else ""
    hint = "restart all with --resume to continue from the last checkpoint; " if code < 0 else ""
    print(f"error: worker {failed.index} (pid {failed.pid}) {describe_exit(code)}{detail}; "
          f"stopped the other {len(others)} worker(s); {hint}logs in {config.log_dir}", file=sys.stderr, flush=True)
    return 1


def summarise(workers: list[Worker], codes: list[int], received: list[int]) -> int:
    if all(code == 0 for code in codes):
        return 0
    interrupted = [code for code in codes if code in INTERRUPTED]
    if received or len(interrupted) == len(codes):
        signum = received[0] if received else interrupted[0] - 128
        print(f"stopped by {signal.Signals(signum).name}: {len(interrupted)} of {len(codes)} worker(s) saved "
              "a checkpoint; continue with --resume", file=sys.stderr, flush=True)
        return 128 + signum
    mixed = ", ".join(f"worker {worker.index} {describe_exit(code)}" for worker, code in zip(workers, codes,
                                                                                         strict=True))
    print(f"error: the workers ended differently ({mixed})", file=sys.stderr, flush=True)
    return 1


def launch(argv: list[str], config: LaunchConfig, environment: dict | None = None) -> int:
    """Start the workers, supervise them, return the job's exit status.

    The workers' temporary folders (the non-chief checkpoints) live under one folder of the launcher's,
    removed at the end: a worker killed before it could clean up leaves nothing behind either.
    """
    environment = dict(os.environ if environment is None else environment)
    scratch = tempfile.mkdtemp(prefix="masquerade-launch-", dir=environment.get("TMPDIR"))
    try:
        workers = start_workers(argv, config, {**environment, "TMPDIR": scratch})
        for worker in workers:
            print(f"worker {worker.index}: pid {worker.pid}, log {worker.log_path}", flush=True)
        return supervise(workers, config)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def option_value(command: list[str], flag: str) -> str | None:
    for index, word in enumerate(command):
        if word == flag and index + 1 < len(command):
            return command[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="python -m training launch --workers N [options] -- dcgan --data ... --out ...",
    )
    parser.add_argument("--workers", type=int, required=True, help="worker processes to start on this host")
    parser.add_argument("--log-dir", help="one log per worker (default: OUT/workers, OUT from the command)")
    parser.add_argument("--gpus-per-worker", type=int, default=0,
                        help="give worker i its own GPUs (CUDA_VISIBLE_DEVICES); 0 = all visible to all")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="seconds the others may take to follow a worker that finished or stopped")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the training command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if not command or command[0] not in LAUNCHABLE:
            raise ValueError(f"launch runs a training command after '--', one of: {', '.join(LAUNCHABLE)} "
                             f"(got {' '.join(command) or 'nothing'})")
        log_dir = args.log_dir
        if log_dir is None:
            out = option_value(command, "--out")
            if out is None or "://" in out:
                raise ValueError("--log-dir is required when the command's --out is missing or remote")
            log_dir = str(Path(out) / "workers")
        config = LaunchConfig(args.workers, Path(log_dir), gpus_per_worker=args.gpus_per_worker,
                              grace_seconds=args.grace)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return launch([sys.executable, "-m", "training", *command], config)
