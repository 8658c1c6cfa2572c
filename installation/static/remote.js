"use strict";
// The gallery remote: polls /api/status once a second and the live view twice a second; controls POST JSON.
// The token is sent once, to /api/login, which answers with an HttpOnly session cookie; it is never stored here.
const byId = (id) => document.getElementById(id);
let liveUrl = null;
let liveTag = null;
let controlsShown = false;

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(answer.error || `${response.status} ${response.statusText}`);
  }
  return answer;
}

function say(text) {
  byId("message").textContent = text || "";
}

function seconds(value) {
  const total = Math.floor(value || 0);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  return hours ? `${hours} h ${minutes} min` : `${minutes} min ${total % 60} s`;
}

function showSignedIn(signedIn) {
  byId("login").hidden = signedIn;
  byId("controls").hidden = !signedIn;
  controlsShown = signedIn;
}

function showStatus(status) {
  const health = status.health || {};
  const paused = Boolean(status.controls && status.controls.pause);
  const state = health.state === "running" && paused ? "paused" : (health.state || "unknown");
  const badge = byId("state");
  badge.textContent = state;
  badge.className = `badge ${state}`;
  byId("fps").textContent = health.fps === undefined ? "–" : `${health.fps} new, ${health.display_fps} shown`;
  byId("render").textContent = health.render_ms === undefined ? "–" : `${health.render_ms} ms`;
  byId("fallback").textContent = health.fallback || "–";
  byId("uptime").textContent = health.uptime_seconds === undefined ? "–" : seconds(health.uptime_seconds);
  byId("bundle").textContent = health.bundle || "–";
  byId("hours").textContent = health.hours || "–";
  byId("error").textContent = health.last_error || "none";
  const controls = status.controls || {};
  byId("pause").textContent = paused ? "Resume" : "Pause";
  byId("pause").setAttribute("aria-pressed", String(paused));
  for (const name of ["captions", "upscale"]) {
    byId(name).setAttribute("aria-pressed", String(Boolean(controls[name])));
  }
  const speed = byId("speed");
  if (document.activeElement !== speed && controls.speed !== undefined) {
    speed.value = controls.speed;
    byId("speed-value").textContent = controls.speed;
  }
  const presets = status.presets || [];
  byId("presets").hidden = presets.length === 0;
  const select = byId("preset");
  if (select.options.length !== presets.length) {
    select.replaceChildren(...presets.map((name) => new Option(name, name)));
  }
  showSignedIn(Boolean(status.signed_in));
}

async function refreshStatus() {
  try {
    const response = await fetch("/api/status", {credentials: "same-origin"});
    if (response.status === 401 || response.status === 403) {
      showSignedIn(false);
      byId("state").textContent = "sign in";
      return;
    }
    showStatus(await response.json());
  } catch (error) {
    byId("state").textContent = "offline";
    byId("state").className = "badge offline";
  }
}

async function refreshLive() {
  try {
    const headers = liveTag ? {"If-None-Match": liveTag} : {};
    const response = await fetch("/api/thumbnail.jpg", {credentials: "same-origin", headers});
    if (response.status !== 200) {
      return;
    }
    liveTag = response.headers.get("ETag");
    const url = URL.createObjectURL(await response.blob());
    const image = byId("live");
    image.src = url;
    image.dataset.frame = liveTag || "";
    if (liveUrl) {
      URL.revokeObjectURL(liveUrl);
    }
    liveUrl = url;
  } catch (error) {
    // The piece may be restarting: try again at the next tick.
  }
}

async function send(name, value) {
  try {
    say("");
    await post("/api/control", value === undefined ? {name} : {name, value});
    await refreshStatus();
  } catch (error) {
    say(error.message);
  }
}

function wire() {
  byId("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post("/api/login", {token: byId("token").value});
      byId("token").value = "";
      say("");
      await refreshStatus();
      await refreshLive();
    } catch (error) {
      say(error.message);
    }
  });
  byId("sign-out").addEventListener("click", async () => {
    await post("/api/logout", {}).catch(() => {});
    await refreshStatus();
  });
  for (const button of document.querySelectorAll("[data-trigger]")) {
    button.addEventListener("click", () => send(button.dataset.trigger));
  }
  for (const button of document.querySelectorAll("[data-toggle]")) {
    button.addEventListener("click", () => send(button.dataset.toggle, button.getAttribute("aria-pressed") !== "true"));
  }
  const speed = byId("speed");
  speed.addEventListener("input", () => { byId("speed-value").textContent = speed.value; });
  speed.addEventListener("change", () => send("speed", Number(speed.value)));
  byId("apply-preset").addEventListener("click", async () => {
    try {
      await post("/api/preset", {name: byId("preset").value});
      await refreshStatus();
    } catch (error) {
      say(error.message);
    }
  });
  refreshStatus();
  refreshLive();
  setInterval(refreshStatus, 1000);
  setInterval(refreshLive, 500);
}

wire();
