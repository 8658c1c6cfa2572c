"""Getting frames onto disk safely: refusals before rendering, hidden temporary names renamed into place only when
complete, clean-up of what killed exports left behind, and one clear line for a full disk.

Temporary names carry the writing process's id (`.loop.mp4.partial-<pid>-<random>`): an export that was killed
outright (SIGKILL, a power cut) leaves one behind, and the next export to the same name removes it once its
process is gone.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from installation.video.ffmpeg import check_encoder, ffmpeg_command, ffmpeg_exe
from installation.video.settings import EXTENSIONS, ExportConfig, ExportError
from models.files import write_bytes_atomic

log = logging.getLogger(__name__)

STALE_PARTIAL_SECONDS = 6 * 3600  # a partial nobody has touched for this long is abandoned, whoever owns it
# Read once at import (os.umask can only be read by setting it, which is not thread-safe later on).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_output(config: ExportConfig, ffmpeg: str | None = None) -> None:
    """Everything that can be refused before rendering: existing output, folder, writability, encoder."""
    targets = [config.out] + ([config.contact_sheet_path] if config.contact_sheet else [])
    for target in targets:
        if (target.exists() or target.is_symlink()) and not config.overwrite:
            raise FileExistsError(f"{target} already exists; pass --overwrite to replace it")
        if target.is_dir() and target != config.out:
            raise ValueError(f"{target} is a folder; choose another output name")
    if config.codec == "png":
        if config.out.exists() and not _is_png_sequence(config.out):
            raise ValueError(f"{config.out} exists and is not a PNG sequence folder; refusing to replace it")
    elif config.out.is_dir():
        raise ValueError(f"{config.out} is a folder; give a file name ending in {EXTENSIONS[config.codec][0]}")
    folder = config.out.parent
    if not folder.exists():
        raise FileNotFoundError(f"output folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".masquerade-write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"output folder {folder} is not writable ({error.strerror})") from None
    if config.codec != "png":
        check_encoder(config.codec, ffmpeg or ffmpeg_exe())


def _is_png_sequence(folder: Path) -> bool:
    return folder.is_dir() and all(re.fullmatch(r"frame_\d{6}\.png", p.name) for p in folder.iterdir())


def _published_mode(mode: int) -> int:
    """The permissions a normal file (0o666) or folder (0o777) would get under this process's umask."""
    return mode & ~_UMASK


def _publish(temporary: Path, mode: int) -> None:
    """Give a finished temporary (mkstemp makes 0600, mkdtemp 0700) the permissions a normal file would get."""
    os.chmod(temporary, _published_mode(mode))


def _disk_full_message(target: Path) -> str:
    return f"no space left on device while writing {target} (the partial file was removed)"


def encode_png(image: np.ndarray, compression: int = 6) -> bytes:
    """An RGB image as PNG bytes (zlib level `compression`, 0..9)."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION,
                                                                               compression])
    if not ok:
        raise ExportError(f"could not encode a {image.shape} image as PNG")
    return encoded.tobytes()


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """One PNG file written whole or not at all; a full disk is one ExportError line."""
    try:
        write_bytes_atomic(path, encode_png(image), mode=_published_mode(0o666))
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise ExportError(_disk_full_message(path)) from None
        raise


def partial_prefix(target: Path) -> str:
    """Hidden temporary name of `target` while it is written, with this process's id for stale clean-up."""
    return f".{target.name}.partial-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_partials(target: Path, now: float | None = None) -> list[Path]:
    """Remove what killed exports of `target` left behind: only our own temporary names beside it, and only
    when the process that wrote one is gone or it has not been touched for STALE_PARTIAL_SECONDS (names from
    before the id was added, or a recycled id). Returns what was removed."""
    now = time.time() if now is None else now
    pattern = re.compile(rf"\.{re.escape(target.name)}\.partial-(?:(\d+)-)?[A-Za-z0-9_]+"
                         rf"{re.escape(target.suffix)}")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink():
            continue
        try:
            idle = now - entry.lstat().st_mtime
        except OSError:
            continue
        owner = match.group(1)
        owner_gone = owner is not None and int(owner) != os.getpid() and not _process_alive(int(owner))
        if not (owner_gone or idle > STALE_PARTIAL_SECONDS):
            continue
        try:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:
            log.warning("could not remove %s left by an interrupted export: %s", entry, error)
            continue
        removed.append(entry)
    if removed:
        log.info("removed %d partial file(s) left by interrupted exports of %s", len(removed), target.name)
    return removed


class FfmpegSink:
    """Raw RGB frames into an ffmpeg process writing a hidden temporary file beside the output."""

    def __init__(self, config: ExportConfig, ffmpeg: str, source_size: tuple[int, int] | None = None):
        self.config = config
        out = config.out
        handle, temporary = tempfile.mkstemp(prefix=partial_prefix(out), suffix=out.suffix, dir=out.parent)
        os.close(handle)
        self.temporary = Path(temporary)
        self.stderr = tempfile.TemporaryFile()
        self.command = ffmpeg_command(ffmpeg, config, self.temporary, source_size)
        log.debug("ffmpeg: %s", " ".join(self.command))
        try:
            # Its own session: a terminal's Ctrl-C reaches only us, and we decide how ffmpeg stops.
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=self.stderr, start_new_session=True)
        except OSError as error:
            self.discard()
            raise ExportError(f"could not start {ffmpeg}: {error.strerror or error}") from None

    def ffmpeg_said(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1] if lines else "no message"

    def failure(self, returncode: int | None) -> ExportError:
        said = self.ffmpeg_said()
        if "No space left" in said:
            return ExportError(_disk_full_message(self.config.out))
        return ExportError(f"ffmpeg failed writing {self.config.out} (exit {returncode}): {said}")

    def write(self, frame: np.ndarray) -> None:
        try:
            self.process.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, ValueError):
            try:
                returncode = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                returncode = None
            raise self.failure(returncode) from None

    def finish(self) -> None:
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        returncode = self.process.wait()
        if returncode != 0:
            raise self.failure(returncode)
        _publish(self.temporary, 0o666)
        os.replace(self.temporary, self.config.out)
        self.stderr.close()

    def stop(self) -> None:
        """Kill ffmpeg (unblocks a writer stuck on the pipe)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)
        self.stderr.close()


class PngSink:
    """frame_000000.png ... in a hidden temporary folder, renamed into place when complete."""

    def __init__(self, config: ExportConfig):
        self.config = config
        out = config.out
        self.temporary = Path(tempfile.mkdtemp(prefix=partial_prefix(out), dir=out.parent))
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        path = self.temporary / f"frame_{self.count:06d}.png"
        try:
            path.write_bytes(encode_png(frame, compression=3))
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise ExportError(_disk_full_message(self.config.out)) from None
            raise ExportError(f"could not write {path.name} for {self.config.out}: {error.strerror or error}") from None
        self.count += 1

    def finish(self) -> None:
        out = self.config.out
        _publish(self.temporary, 0o777)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(self.temporary, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.temporary, out)

    def stop(self) -> None:
        pass

    def discard(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)


class FrameWriter:
    """A thread that finishes rendered frames for the output and feeds them to a sink, one batch queued ahead."""

    _END = object()

    def __init__(self, sink: FfmpegSink | PngSink, transform: Callable[[int, np.ndarray], np.ndarray]):
        self.sink = sink
        self.transform = transform  # (frame index, rendered frame) -> output frame
        self.written = 0
        self.batches: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            batch = self.batches.get()
            if batch is self._END:
                return
            if self.error is not None or self.stopping.is_set():
                continue  # keep draining so the producer never blocks on a dead writer
            try:
                for frame in batch:
                    if self.stopping.is_set():
                        break
                    self.sink.write(self.transform(self.written, frame))
                    self.written += 1
            except BaseException as error:  # handed to the main thread, which raises it
                self.error = error

    def put(self, batch: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.batches.put(batch)

    def close(self) -> None:
        """Wait for every queued frame, then finish the sink (rename into place)."""
        self.batches.put(self._END)
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.sink.finish()

    def abort(self) -> None:
        """Stop now and remove every temporary file."""
        self.stopping.set()
        self.sink.stop()
        while True:
            try:
                self.batches.get_nowait()
            except queue.Empty:
                break
        self.batches.put(self._END)
        self.thread.join(timeout=60)
        self.sink.discard()
