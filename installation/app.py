"""The live piece: walk -> render worker -> screen, steered by the control state, never waiting on the model."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from installation import config as runtime_config
from installation.captions import Captions
from installation.compositor import Compositor, Overlays, pick_frame, placeholder
from installation.controls import PARAMETERS, ControlState, Snapshot
from installation.kiosk import Health, Heartbeat, sd_notify
from installation.latent import Walker, offset_direction
from installation.ndi import NdiSwitch
from installation.parameters import key_bindings
from installation.presets import DEFAULT_FILE as DEFAULT_PRESETS_FILE
from installation.presets import Presets
from installation.ratelimit import RateLimitedLog
from installation.remote import Remote
from installation.schedule import OpeningGate, closed_picture
from installation.services import Services
from installation.worker import Fallback, FrameRequest, RenderWorker
from models.bundle import Bundle, load_bundle
from models.manifest import error_lines
from models.render import Renderer

log = logging.getLogger("masquerade")

# Keys and what they write into the control state (source "keyboard"). Toggles read the current value.
TOGGLE_KEYS, TRIGGER_KEYS = key_bindings()  # from the parameter table's `keys`
DEFAULT_SCREENSHOT = "masquerade-{frame}.png"
CLOSED_FPS = 2.0  # display flips a second while closed: the blank stays up, keys still answer, little power used
REMOTE_STATUS_EVERY = 0.5  # seconds between status documents handed to the web remote


def initial_controls(config: runtime_config.RuntimeConfig) -> ControlState:
    """The control registry with the configured values as the starting point of every parameter that is both a
    start-up setting and a live control (one name for both, installation/parameters.py)."""
    parameters = [dataclasses.replace(parameter, default=getattr(config, parameter.name))
                  if parameter.section is not None else parameter for parameter in PARAMETERS.values()]
    return ControlState(parameters, hold_seconds=config.hold_seconds)


def steer(walker: Walker, controls: Snapshot, previous: Snapshot | None, triggers: dict, now: float) -> bool:
    """Apply what changed in the control state to the walk; True when the path changed (frames in flight are stale)."""
    changed = {name for name in controls if previous is None or controls[name] != previous[name]}
    if "speed" in changed:
        walker.set_speed(controls["speed"], now)
    if "pause" in changed:
        (walker.pause if controls["pause"] else walker.resume)(now)
    if "transition_seconds" in changed:
        walker.set_transition_seconds(controls["transition_seconds"])
    if "truncation" in changed:
        walker.set_truncation(controls["truncation"])
    if "mode" in changed and controls["mode"] != walker.mode:
        walker.set_mode(controls["mode"], now)
    if "loop_keyframes" in changed and controls["loop_keyframes"] != walker.config.loop_keyframes:
        walker.set_loop_keyframes(controls["loop_keyframes"], now)
    if changed & {"offset_direction", "offset_amount"}:
        amount = controls["offset_amount"]
        direction = offset_direction(controls["offset_direction"], walker.config.latent_dim) if amount else None
        walker.set_offset(direction, amount)
    for _ in range(min(triggers.get("next", 0), 8)):
        walker.next_keyframe(now)
    for _ in range(min(triggers.get("previous", 0), 8)):
        walker.previous_keyframe(now)
    if triggers.get("jump"):
        walker.jump_random(now)
    if "seed" in triggers:
        walker.jump_to_seed(int(triggers["seed"]), now)
    path_fields = {"speed", "pause", "truncation", "mode", "loop_keyframes", "offset_direction", "offset_amount",
                   "upscale"}
    return bool(changed & path_fields) or bool(set(triggers) & {"next", "previous", "jump", "seed"})


def predicted_latents(walker: Walker, times: np.ndarray) -> np.ndarray:
    """Latents the walk will reach at future times if nobody steers it (read from the walk; nothing moves)."""
    return walker.latents_at(times)


class Stats:
    """Frame rates over a window of `every` seconds: display flips (`fps`) and distinct pictures (`new_fps`)."""

    def __init__(self, clock: Callable[[], float], every: float):
        self.clock, self.every = clock, every
        self.started = self.window_start = clock()
        self.frames = self.window_frames = self.window_new_frames = 0

    def frame(self, worker: RenderWorker, new: bool = True) -> None:
        self.frames += 1
        self.window_frames += 1
        self.window_new_frames += int(new)
        now = self.clock()
        if now - self.window_start >= self.every:
            log.info("%.1f fps displayed (%.1f new pictures a second), render %.1f ms, %d renders, %d stale "
                     "requests dropped, %d render errors", self.fps, self.new_fps, worker.latency * 1000,
                     worker.renders, worker.dropped_requests, worker.failures)
            self.window_start, self.window_frames, self.window_new_frames = now, 0, 0

    @property
    def fps(self) -> float:
        elapsed = self.clock() - self.window_start
        return self.window_frames / elapsed if elapsed > 0 else 0.0

    @property
    def new_fps(self) -> float:
        elapsed = self.clock() - self.window_start
        return self.window_new_frames / elapsed if elapsed > 0 else 0.0


class Piece:
    """The live loop. Everything it talks to is handed in, so tests run it headless with parts of their own;
    `Piece.from_config` builds the real parts from the configuration (what `main` runs)."""

    def __init__(self, config: runtime_config.RuntimeConfig, *, bundle: Bundle, renderer: Renderer,
                 services: Services, captions: Captions, controls: ControlState, display=None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.bundle = bundle
        self.renderer = renderer
        self.controls = controls
        self.services = services  # OSC, feedback and the webcam, fed the same `controls`
        self.captions = captions
        self.compositor = Compositor(fade_between_renders=config.fade_between_renders)
        self.walker = Walker(runtime_config.walk_config(config, self.bundle.latent_dim), speed=config.speed)
        self.ndi = NdiSwitch(config.ndi_name, config.fps)
        self.presets = Presets(config.presets_file or DEFAULT_PRESETS_FILE)
        self.services.osc_handlers.update(self.presets.osc_handlers())
        self.display = display
        self.stop_requested = threading.Event()
        self.frames_shown = 0  # display flips
        self.new_frames = 0  # distinct pictures put on screen: what the status file and the stall watch count
        self.last_new_frame_at = clock()
        self.stamp = self.shown_stamp = 0  # steering generation asked for / on screen (for latency probes)
        self.previous_controls: Snapshot | None = None
        self.pending_triggers: dict = {}
        self.requested_until = -np.inf
        self.interval = 1.0 / config.fps
        self.fallback = Fallback(config.failures_before_fallback, config.retry_seconds)
        self.worker: RenderWorker | None = None
        self.shown: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.first_frame_at = self.last_frame_at = 0.0
        self.stop_reason = "finished"
        self.health = Health(started=clock())
        self.limited_log = RateLimitedLog(log, 30.0, clock=clock)
        self.health.bundle = str(self.bundle.path)
        # Opening hours (installation/schedule.py): outside them a blank screen or a still, and no rendering.
        self.hours = OpeningGate(config.opening_hours(), wall_clock)
        self.closed_picture = closed_picture(config.closed_image)
        self.closed = False
        self.remote = None  # the web remote (installation/remote.py), made in run() when configured
        self.published_at = -float("inf")
        self.log_startup()

    @classmethod
    def from_config(cls, config: runtime_config.RuntimeConfig, *, bundle: Bundle | None = None, display=None,
                    controls: ControlState | None = None, renderer: Renderer | None = None,
                    services: Services | None = None, captions: Captions | None = None,
                    clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> Piece:
        """The piece with its real parts made from the configuration: the bundle it names, its renderer, the
        services and captions it asks for. A part given here is used instead of the real one."""
        if bundle is None:
            bundle = load_bundle(config.model, backend=config.backend, threads=config.threads)
        controls = controls if controls is not None else initial_controls(config)
        return cls(config, bundle=bundle, display=display, controls=controls, clock=clock, wall_clock=wall_clock,
                   renderer=renderer if renderer is not None else Renderer(bundle),
                   services=services if services is not None else Services(config, controls, clock),
                   captions=captions if captions is not None else Captions.open(config, bundle, clock))

    def log_startup(self) -> None:
        manifest = self.bundle.manifest
        upscaler = manifest.get("upscaler")
        log.info("bundle %s: generator %d px (step %s)%s, %s backend", self.bundle.path, self.bundle.resolution,
                 manifest["generator"].get("steps"),
                 f", upscaler {upscaler['architecture']} x{upscaler['scale']} -> {self.renderer.output_size()} px"
                 if upscaler else ", no upscaler", "LiteRT" if self.bundle.backend == "litert" else "TensorFlow")
        log.info("target %.0f fps, walk %s from seed %d, render ahead %d", self.config.fps, self.config.mode,
                 self.config.seed, self.config.render_ahead)

    def request_stop(self, signum=None, *_):
        if signum is not None:
            self.stop_reason = signal.Signals(signum).name
        self.stop_requested.set()

    def handle_key(self, name: str, ctrl: bool, shift: bool) -> None:
        if (name == "q" and ctrl and shift) or (name in ("escape", "q") and not self.config.kiosk):
            self.stop_reason = "key"
            self.request_stop()
        elif name in TOGGLE_KEYS:
            parameter = TOGGLE_KEYS[name]
            self.controls.set(parameter, not self.controls.get(parameter), "keyboard")
        elif name in TRIGGER_KEYS:
            self.controls.trigger(TRIGGER_KEYS[name], "keyboard")
        elif name == "s":
            self.screenshot()
        else:
            self.presets.handle_key(name, ctrl)  # Ctrl+1..9 save a preset, 1..9 recall it

    def screenshot(self) -> None:
        """Write the screen to the configured pattern (validated at start). A failed write (full disk, a folder
        that cannot be made) is logged, rate-limited, and the show goes on."""
        if self.display is None:
            return
        path = (self.config.screenshot or DEFAULT_SCREENSHOT).format(frame=self.frames_shown)
        try:
            self.display.screenshot(path)
        except (OSError, RuntimeError) as error:  # pygame.error is a RuntimeError
            self.limited_log.log(logging.WARNING, "screenshot", "screenshot %s not written: %s", path,
                                 str(error) or type(error).__name__)

    def run(self) -> int:
        config = self.config
        try:
            self.renderer.warm_up()
        except Exception as error:  # noqa: BLE001 - a failing pipeline falls back below; it never stops the piece
            log.error("render warm-up failed: %s: %s", type(error).__name__, error)
        if config.remote:
            self.remote = Remote(config, self.controls, presets=self.remote_presets(), clock=self.clock).start()
        self.services.start()
        self.captions.start()
        self.worker = worker = RenderWorker(self.renderer.render, clock=self.clock).start()
        stats = Stats(self.clock, config.stats_every)
        interval = self.interval
        arrival, last_sequence, last_index, frame_gap = self.clock(), -1, -1, interval
        pace = PaceKeeper(config.fps, self.clock)
        heartbeat = Heartbeat(config.status_file, config.heartbeat_every, self.services.feedback, self.clock)
        fallback = self.fallback
        closed_pace = PaceKeeper(CLOSED_FPS, self.clock)
        sd_notify("READY=1")
        self.last_new_frame_at = self.clock()  # the stall clock starts now, not before the warm-up
        try:
            while not self.stop_requested.is_set():
                now = self.clock()
                if heartbeat.beat(self.health_report(stats, worker, fallback)):
                    self.worker = worker = self.watch(worker)
                fallback.update(worker.consecutive_failures, worker.last_error, now)
                if self.display is not None:
                    for key in self.display.poll_keys():
                        self.handle_key(*key)
                controls = self.take_controls(now)
                if self.show_closed(now, stats, worker):
                    self.publish_status(heartbeat, stats, worker, fallback, now)
                    if config.frames and self.frames_shown >= config.frames:
                        break
                    closed_pace.wait(self.controls.changed)
                    continue
                walk_state = self.walker.advance(now)
                self.request_frames(now, controls)
                result = worker.latest()
                if result is None and fallback.level == "still" and self.target is None:
                    self.target = self.shown = placeholder(self.renderer.output_size(False))
                if result is not None or self.target is not None:
                    index = pick_frame(result, now) if result is not None else last_index
                    if result is not None and (result.sequence, index) != (last_sequence, last_index):
                        frame_gap = 0.8 * frame_gap + 0.2 * max(interval, now - arrival)
                        arrival, last_sequence, last_index = now, result.sequence, index
                        self.shown_stamp = result.stamp
                        self.target = result.frames[index]
                    picture = self.compositor.mix(self.target, self.shown, controls["trail"], now - arrival,
                                                  frame_gap, interval)
                    new = self.shown is None or (picture is not self.shown and not np.array_equal(picture, self.shown))
                    self.shown = picture
                    if new:
                        self.new_frames += 1
                        self.last_new_frame_at = now
                    if self.display is not None:
                        self.compositor.show(self.display, self.shown, self.overlays(controls, stats, worker), now)
                    if self.remote is not None:
                        self.remote.offer_frame(self.shown)
                    self.ndi.update(controls["ndi"], self.shown)
                    self.frames_shown += 1
                    if not self.first_frame_at:
                        log.info("first frame on screen (%s backend)", self.bundle.backend)
                    self.first_frame_at = self.first_frame_at or now
                    self.last_frame_at = now
                    stats.frame(worker, new)
                    if config.screenshot_every and self.frames_shown % config.screenshot_every == 0:
                        self.screenshot()
                    if config.frames and self.frames_shown >= config.frames:
                        break
                self.watch_for_stall(now, controls)
                caption = self.captions.after_frame(self.target, controls, now)
                triggers, self.pending_triggers = self.pending_triggers, {}
                self.services.after_frame(walk_state, stats.fps, self.captions.novelty, controls, triggers, caption)
                self.publish_status(heartbeat, stats, worker, fallback, now)
                pace.wait(self.controls.changed, self.between_frames)
        finally:
            worker.stop()
            self.ndi.stop()
            self.services.stop()
            if self.remote is not None:
                self.remote.stop()
            self.captions.stop()
            if config.screenshot and self.shown is not None:
                self.screenshot()
            heartbeat.stopped(self.health_report(stats, worker, fallback), self.stop_reason)
        log.info("stopped after %d frames (%s)", self.frames_shown, self.stop_reason)
        return 0

    def take_controls(self, now: float) -> Snapshot:
        """Read the control state once and apply what changed to the walk; a changed path bumps the stamp."""
        recalled = self.presets.take(self.walker, self.controls, self.services.feedback)  # writes its controls
        controls = self.controls.snapshot()
        triggers = self.controls.drain_triggers()
        self.pending_triggers.update(triggers)  # for the feedback at the end of the frame (e.g. query)
        for name, state in (("follow_hours", None), ("open_now", "open"), ("close_now", "closed")):
            if name in triggers:
                self.hours.override(state)
                log.info("opening hours: %s", self.hours.describe())
        if steer(self.walker, controls, self.previous_controls, triggers, now):
            self.stamp += 1
        if recalled is not None:  # after steering, so the glide uses the recalled transition_seconds and mode
            self.walker.jump_to_keyframe(recalled.seed, recalled.keyframe, now)
            self.stamp += 1
        self.previous_controls = controls
        return controls

    def request_frames(self, now: float, controls: Snapshot) -> None:
        """Ask for a render when steered (what is in flight is stale) or when the frames already asked for run
        out before a new render could arrive; otherwise the batch in hand covers now."""
        worker, interval = self.worker, self.interval
        lead = worker.latency if worker.renders else 0.0
        due = self.stamp > worker.min_stamp or (worker.idle and self.requested_until < now + lead + interval)
        if due and self.fallback.may_render(now):
            times = now + lead + interval * np.arange(self.config.render_ahead + 1)
            worker.submit(FrameRequest(self.stamp, times, predicted_latents(self.walker, times),
                                       bool(controls["upscale"]) and self.fallback.upscale))
            self.requested_until = times[-1]

    def between_frames(self) -> None:
        """A control changed while the display waits: steer and start the render now, not at the next frame,
        so the change is on screen one frame sooner. The display keeps its own cadence."""
        now = self.clock()
        stamp = self.stamp
        controls = self.take_controls(now)
        if self.stamp != stamp:
            self.request_frames(now, controls)

    def show_closed(self, now: float, stats: Stats, worker: RenderWorker) -> bool:
        """Outside the opening hours: show the blank (or the still), ask for no render, and say True. The first
        frame after closing and the first after opening are logged; reopening asks for a fresh render."""
        closed = not self.hours.is_open()
        if closed != self.closed:
            self.closed = closed
            log.info("%s: %s", "closed" if closed else "open", self.hours.describe())
            self.target = None  # reopening shows nothing older than the first new render
            self.compositor.reset_trail()
            self.stamp += 1
        if not closed:
            return False
        new = self.shown is not self.closed_picture
        self.shown = self.closed_picture
        self.last_new_frame_at = now  # a blank screen on purpose is not a stall
        self.health.seconds_since_new_frame, self.health.stalled = 0.0, False
        if self.display is not None:
            self.display.show(self.shown)
        if self.remote is not None:
            self.remote.offer_frame(self.shown)
        self.frames_shown += 1
        self.new_frames += int(new)
        stats.frame(worker, new)
        return True

    def publish_status(self, heartbeat: Heartbeat, stats: Stats, worker: RenderWorker, fallback: Fallback,
                       now: float) -> None:
        """Hand the web remote the status file's document, twice a second at most."""
        if self.remote is None or now - self.published_at < REMOTE_STATUS_EVERY:
            return
        self.published_at = now
        health = self.health_report(stats, worker, fallback)
        self.remote.publish(heartbeat.document(health, heartbeat.state(health)))

    def remote_presets(self):
        """The presets the web remote lists and recalls: installation/presets.py's `Presets` (its `presets` by name
        and `request("recall", name, source)`) once the piece has them as `self.presets`; else none."""
        return getattr(self, "presets", None)

    def watch_for_stall(self, now: float, controls: Snapshot) -> None:
        """No new picture for `stall_seconds` while the walk moves is a fault: report it, then try a fresh start
        of the picture path (a new render and no trail). A paused walk, speed 0 and the still fallback hold the
        picture on purpose and restart the clock."""
        health = self.health
        if controls["pause"] or controls["speed"] == 0 or self.fallback.level == "still":
            self.last_new_frame_at = now
        still_for = now - self.last_new_frame_at
        health.seconds_since_new_frame = still_for
        stalled = still_for >= self.config.stall_seconds
        if stalled and not health.stalled:
            health.last_error = f"no new picture for {still_for:.1f} s while the walk is not paused"
            log.error("stalled: %s; restarting the picture path", health.last_error)
            self.compositor.reset_trail()
            self.stamp += 1
        elif health.stalled and not stalled:
            log.warning("new pictures again after a stall")
        health.stalled = stalled

    def health_report(self, stats: Stats, worker: RenderWorker, fallback: Fallback) -> Health:
        self.health.frames_shown, self.health.display_fps = self.frames_shown, stats.fps
        self.health.new_frames, self.health.fps = self.new_frames, stats.new_fps
        self.health.render_ms, self.health.render_failures = worker.latency * 1000, worker.failures
        self.health.fallback = fallback.level
        self.health.osc = self.services.osc_status()
        self.health.last_error = worker.last_error or self.health.last_error
        self.health.closed, self.health.hours = self.closed, self.hours.describe()
        self.health.remote = self.remote.status() if self.remote is not None else "off"
        return self.health

    def watch(self, worker: RenderWorker) -> RenderWorker:
        """Restart dead threads: the render worker here, OSC and the webcam in the services."""
        restarted = self.services.ensure_alive()
        if not worker.alive:
            log.error("render worker died; restarting it")
            worker = RenderWorker(self.renderer.render, clock=self.clock).start()
            restarted.append("render")
        self.health.restarts += len(restarted)
        return worker

    def overlays(self, controls: Snapshot, stats: Stats, worker: RenderWorker) -> Overlays:
        """What the compositor draws over this picture: the caption, the webcam preview, the frame-rate lines."""
        webcam = self.services.webcam
        preview = webcam.preview() if webcam is not None and self.config.webcam_preview else None
        text = () if not controls["fps_overlay"] else (
            f"{stats.fps:5.1f} fps  render {worker.latency * 1000:5.1f} ms",
            f"keyframe {self.walker.keyframe}  seed {self.walker.seed}  {self.walker.mode}"
            f"{'  paused' if self.walker.paused else ''}")
        return Overlays(caption=self.captions.overlay if controls["captions"] else None, preview=preview,
                        preview_corner=webcam.config.preview_corner if webcam is not None else "bottom-right",
                        text=text)


class PaceKeeper:
    """Holds the display to its frame-rate target without drifting (sleeps to the next deadline); while it
    sleeps, a set `wake` event runs `on_wake` at once (control changes are steered between frames)."""

    def __init__(self, fps: float, clock: Callable[[], float]):
        self.interval, self.clock = 1.0 / fps, clock
        self.deadline = clock() + self.interval

    def wait(self, wake: threading.Event | None = None, on_wake: Callable[[], None] | None = None) -> None:
        while True:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                self.deadline = max(self.deadline, self.clock() - self.interval) + self.interval
                return
            if wake is None:
                time.sleep(remaining)
            elif wake.wait(remaining):
                wake.clear()
                if on_wake is not None:
                    on_wake()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_installation.py", description="Run the Masquerade installation.")
    runtime_config.add_arguments(parser)
    parser.add_argument("--check", action="store_true",
                        help="validate this machine (bundle, display, camera, ports) and exit: 0 when all pass")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        from installation.video import main as export_main

        return export_main(argv[1:])
    args = parse_args(argv)
    try:
        config = runtime_config.resolve(args)
        if not args.print_config and not args.check:
            refuse_early(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.to_toml())
        return 0
    running: list[Piece] = []  # the piece, once built: from then on a signal asks it to stop
    received: list[int] = []  # stop signals that arrived while starting

    def on_signal(signum, frame):
        if not running:
            received.append(signum)
            raise Interrupted(signum)
        running[0].request_stop(signum)

    # SIGHUP (a closed terminal or ssh session) stops the piece like SIGTERM: status file written, exit 0.
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        if args.check:
            from installation.kiosk import run_checks

            return 1 if run_checks(config) else 0
        return run_piece(config, running, received)
    except Interrupted as interrupt:
        print(f"interrupted by {interrupt} while starting; nothing shown", file=sys.stderr)
        return 128 + interrupt.signum


class Interrupted(BaseException):
    # A BaseException, as KeyboardInterrupt is: a signal handler raises it wherever the main thread happens to
    # be, and an `except Exception` on the way (a backend fallback, a retry) must not swallow it.
    """A stop signal arrived before the piece was running (loading the model, --check)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def refuse_early(config: runtime_config.RuntimeConfig) -> None:
    """What can be refused before loading the model and opening a window: a webcam video file that is not
    there (a camera missing at run time is retried instead), an OSC port that must be free and is not."""
    from installation.webcam import source_kind

    source = config.webcam_config().source
    if source_kind(source) == "file" and "%" not in source and not Path(source).is_file():
        raise ValueError(f"webcam video file {source} does not exist (or is not a file); give a camera index, "
                         "a video file, a stream URL or none")
    if config.osc and config.require_osc:
        from installation.kiosk import check_port

        check_port(config)


def run_piece(config: runtime_config.RuntimeConfig, running: list[Piece], received: list[int]) -> int:
    """Build the piece, open the screen and run until stopped; 2 with one line when it cannot start.

    A stop signal while starting raises `Interrupted` from the handler, but when it lands in Python code that C
    calls back (pygame loading its icon inside `set_mode`), the C side swallows the exception; `received` still
    holds the signal, so each step of the start checks it and the piece never runs past a stop it was sent."""
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    from installation.display import NoDisplayError, open_display  # here: pygame only for a piece that runs
    from installation.osc import OscStartError

    display = None
    try:
        # The screen first: a machine that cannot show the piece says so at once, before the model loads.
        display = open_display(config)
        stop_if_interrupted(received)
        piece = Piece.from_config(config, display=display)
        stop_if_interrupted(received)
        running.append(piece)
        return piece.run()
    except (ValueError, FileNotFoundError, NoDisplayError, OscStartError) as error:  # RemoteStartError included
        for line in error_lines(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    finally:
        if display is not None:
            display.close()


def stop_if_interrupted(received: list[int]) -> None:
    """Raise `Interrupted` for a stop signal whose exception was swallowed on the way (see `run_piece`)."""
    if received:
        raise Interrupted(received[0])
