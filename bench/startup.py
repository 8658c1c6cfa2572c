"""Start-up of the piece on each backend, and the installed size of each install profile.

- launch to first frame: wall time from starting `run_installation.py` (a new process, windowed, SDL dummy video
  driver, the bundled default model) to its "first frame on screen" log line, LiteRT and TensorFlow in turn.
- import time: a new process importing the inference engine alone (`ai_edge_litert.interpreter` vs
  `tensorflow` + `keras`), and the runtime's modules up to a loaded bundle.
- installed size: the files of every installed distribution the profile pulls in (pyproject.toml's dependencies,
  then theirs, markers evaluated here), as installed in this environment: the runtime (`pip install -e .`) and
  the studio (`pip install -e '.[train]'`).

    python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "SDL_VIDEODRIVER": "dummy",
       "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
IMPORTS = {
    "litert": "import ai_edge_litert.interpreter",
    "tf": "import tensorflow, keras",
}
LOAD = ("from installation.app import Piece; from models.bundle import load_bundle; "
        "load_bundle({model!r}, backend={backend!r})")


def launch_to_first_frame(backend: str, model: str) -> float:
    """Seconds from process start to the piece's "first frame on screen" line."""
    command = [sys.executable, str(ROOT / "run_installation.py"), "--model", model, "--backend", backend, "--windowed",
               "--width", "512", "--height", "512", "--no-osc", "--frames", "5"]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = None
    for line in process.stderr:
        if "first frame on screen" in line and seen is None:
            seen = time.perf_counter() - began
    process.wait(timeout=120)
    if seen is None or process.returncode != 0:
        raise RuntimeError(f"{backend}: the piece showed no frame (exit {process.returncode})")
    return seen


def timed_python(code: str) -> float:
    """Seconds a new interpreter spends in `code` (its own start-up excluded)."""
    probe = f"import time; began = time.perf_counter(); {code}; print(time.perf_counter() - began)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip().splitlines()[-1])


def closure(requirements: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """Installed distributions a list of requirements pulls in, transitively, with markers evaluated here."""
    seen: set[str] = set()
    pending = [(Requirement(text), extras) for text in requirements]
    while pending:
        requirement, wanted = pending.pop()
        environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
        if requirement.marker is not None and not any(requirement.marker.evaluate(env) for env in environments):
            continue
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        pending += [(Requirement(text), tuple(requirement.extras)) for text in distribution.requires or []]
    return seen


def installed_bytes(names: set[str]) -> int:
    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total


def profiles() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = closure(project["dependencies"])
    studio = runtime | closure(project["optional-dependencies"]["train"])
    return {"runtime (pip install -e .)": runtime, "studio (pip install -e '.[train]')": studio}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "default"))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPU cores, load average {load:.1f}, median of {args.runs} runs, bundle {args.model}")
    results = {}
    for _ in range(args.runs):  # interleaved, so machine noise hits both backends alike
        for backend in ("litert", "tf"):
            results.setdefault(("first frame", backend), []).append(launch_to_first_frame(backend, args.model))
            results.setdefault(("engine import", backend), []).append(timed_python(IMPORTS[backend]))
            results.setdefault(("runtime import + bundle load", backend), []).append(
                timed_python(LOAD.format(model=args.model, backend=backend)))
    print(f"{'':32} {'LiteRT':>9} {'TensorFlow':>11} {'ratio':>7}")
    for what in ("first frame", "engine import", "runtime import + bundle load"):
        litert, tf = (statistics.median(results[(what, backend)]) for backend in ("litert", "tf"))
        label = "launch to first frame" if what == "first frame" else what
        print(f"{label:32} {litert:8.2f}s {tf:10.2f}s {tf / litert:6.1f}x")
    print("\ninstalled size (distributions as installed here):")
    for name, members in profiles().items():
        print(f"  {name:38} {installed_bytes(members) / 2**20:8.0f} MiB in {len(members)} distributions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
