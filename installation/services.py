"""The piece's edges: the OSC server, OSC feedback and the webcam, started, fed and stopped together."""

from __future__ import annotations

import logging
import time

from installation.config import RuntimeConfig
from installation.controls import ControlState, Snapshot
from installation.latent import WalkState
from installation.osc import OscFeedback, OscServer, OscStartError
from installation.webcam import Webcam

log = logging.getLogger(__name__)


class Services:
    def __init__(self, config: RuntimeConfig, controls: ControlState, clock=time.monotonic):
        self.config, self.controls, self.clock = config, controls, clock
        self.osc = self.feedback = self.webcam = None
        self.allow = [part.strip() for part in config.osc_allow.split(",") if part.strip()] or None
        self.osc_problem: str | None = None  # why OSC is not listening, while the port is retried
        self.osc_retry_at = 0.0
        self.wraps = 0
        self.last_feedback = -float("inf")
        self.last_caption = ""
        self.osc_handlers: dict = {}  # addresses beyond the parameters (presets), see OscServer(handlers=...)

    def start(self) -> Services:
        """Start what the configuration asks for. An OSC port that cannot be opened raises only with
        `require_osc`; otherwise the piece runs without OSC and `ensure_alive` retries the port."""
        config = self.config
        if config.osc:
            self.start_osc()
        if config.feedback_host:
            self.feedback = OscFeedback(config.feedback_host, config.feedback_port, config.osc_prefix)
            log.info("OSC feedback to %s:%d", config.feedback_host, config.feedback_port)
        if config.webcam_on:
            self.webcam = Webcam(self.controls, config.webcam_config())
            self.webcam.start()
            log.info("webcam %s", config.webcam)
        return self

    def after_frame(self, state: WalkState, fps: float, novelty: float, controls: Snapshot, triggers: dict,
                    caption: str = "") -> None:
        """Feedback to the controller: periodic state, loop wraps, caption changes, replies to `query`."""
        if state.wrapped:
            self.wraps += 1
        if self.feedback is None:
            return
        now = self.clock()
        if state.wrapped:
            self.feedback.send_loop_wrap(self.wraps)
        if "query" in triggers:
            self.feedback.state_reply(controls)
        if "query" in triggers or now - self.last_feedback >= self.config.feedback_every:
            self.feedback.send_state(state.seed, state.keyframe_index, state.phase, fps, novelty)
            self.last_feedback = now
        if caption and caption != self.last_caption:
            self.feedback.send_caption(caption)
            self.last_caption = caption

    def start_osc(self) -> bool:
        """Open the OSC port; on failure log why (once per outage) and schedule a retry. True when listening."""
        config = self.config
        try:
            self.osc = OscServer(self.controls, config.osc_host, config.osc_port, config.osc_prefix,
                                 allowlist=self.allow, handlers=self.osc_handlers).start()
        except OscStartError as error:
            if config.require_osc:
                raise
            self.osc = None
            self.osc_retry_at = self.clock() + config.osc_retry_seconds
            if self.osc_problem is None:
                log.warning("running without OSC control: %s; retrying every %g s", error, config.osc_retry_seconds)
            self.osc_problem = str(error)
            return False
        if self.osc_problem is not None:
            log.warning("OSC control available again")
        self.osc_problem = None
        log.info("OSC control on %s:%d%s, prefix %s", config.osc_host, self.osc.port,
                 f" from {', '.join(self.allow)}" if self.allow else "", config.osc_prefix)
        return True

    def osc_status(self) -> str:
        """For the status file: off, listening, or unavailable and why."""
        if not self.config.osc:
            return "off"
        if self.osc is not None:
            return f"listening on {self.config.osc_host}:{self.osc.port}"
        if self.osc_problem is not None:
            return f"unavailable, retrying every {self.config.osc_retry_seconds:g} s: {self.osc_problem}"
        return "not started"

    def ensure_alive(self) -> list[str]:
        """Restart a control thread that died, retry an OSC port that was unavailable; returns what restarted."""
        restarted = []
        if self.webcam is not None and self.webcam.ensure_alive():
            restarted.append("webcam")
        if self.osc is not None and not self.osc.is_alive:
            log.error("OSC server thread died; restarting it")
            self.osc.stop()
            self.osc = None
            if self.start_osc():
                restarted.append("osc")
        elif self.config.osc and self.osc is None and self.osc_problem is not None \
                and self.clock() >= self.osc_retry_at:
            self.start_osc()
        return restarted

    def stop(self) -> None:
        for service in (self.osc, self.webcam):
            if service is not None:
                service.stop()
        if self.feedback is not None:
            self.feedback.close()
