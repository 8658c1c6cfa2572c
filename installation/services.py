"""The piece's edges: the OSC server, OSC feedback and the webcam, started, fed and stopped together."""

from __future__ import annotations

import logging
import time

from installation.config import RuntimeConfig
from installation.controls import ControlState, Snapshot
from installation.latent import WalkState

log = logging.getLogger(__name__)


class Services:
    def __init__(self, config: RuntimeConfig, controls: ControlState, clock=time.monotonic):
        self.config, self.controls, self.clock = config, controls, clock
        self.osc = self.feedback = self.webcam = None
        self.allow = [part.strip() for part in config.osc_allow.split(",") if part.strip()] or None
        self.wraps = 0
        self.last_feedback = -float("inf")
        self.last_caption = ""

    def start(self) -> Services:
        """Start what the configuration asks for; a busy port raises with a one-line reason."""
        config = self.config
        if config.osc:
            from installation.osc import OscServer

            self.osc = OscServer(self.controls, config.osc_host, config.osc_port, config.osc_prefix,
                                 allowlist=self.allow).start()
            log.info("OSC control on %s:%d%s, prefix %s", config.osc_host, self.osc.port,
                     f" from {', '.join(self.allow)}" if self.allow else "", config.osc_prefix)
        if config.feedback_host:
            from installation.osc import OscFeedback

            self.feedback = OscFeedback(config.feedback_host, config.feedback_port, config.osc_prefix)
            log.info("OSC feedback to %s:%d", config.feedback_host, config.feedback_port)
        if config.webcam.strip().lower() not in ("", "none"):
            from installation.webcam import Webcam

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

    def ensure_alive(self) -> list[str]:
        """Restart a control thread that died; returns what was restarted."""
        restarted = []
        if self.webcam is not None and self.webcam.ensure_alive():
            restarted.append("webcam")
        if self.osc is not None and not self.osc.is_alive:
            from installation.osc import OscServer

            log.error("OSC server thread died; restarting it")
            old = self.osc
            old.stop()
            self.osc = OscServer(self.controls, old.host, old.port, old.prefix, allowlist=self.allow).start()
            restarted.append("osc")
        return restarted

    def stop(self) -> None:
        for service in (self.osc, self.webcam):
            if service is not None:
                service.stop()
        if self.feedback is not None:
            self.feedback.close()
