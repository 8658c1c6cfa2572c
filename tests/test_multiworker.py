"""Training beyond one process, for real: worker processes on localhost ports with TF_CONFIG and
MultiWorkerMirroredStrategy, started by the launcher; worker deaths, SIGTERM, resume, chief-only writes.

These tests start several TensorFlow processes on a small machine: each takes a minute or two.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from cluster_probe import TINY as PROBE_CONFIG
from cluster_probe import train_and_dump

from training.cluster import Role, WorkerPlaces, role_from_environment
from training.dcgan import DCGANConfig
from training.launch import LaunchConfig, describe_exit, hold_error_lines, last_line, launch, worker_environment
from training.strategy import StrategyConfig, mirrored_strategy

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--resolution", "64", "--width-multiplier", "0.0625", "--batch-size", "8", "--steps-per-loop", "2",
        "--strategy", "multiworker"]
RUN_FOLDER = {"config.json", "checkpoints", "logs", "samples"}


def environment(scratch: Path) -> dict:
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch)}


class Launcher:
    """`python -m training launch --workers 2 -- dcgan ...` in the background, its workers' pids read off stdout."""

    def __init__(self, tmp_path: Path, *dcgan_args: str):
        self.logs = tmp_path / "worker-logs"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "training", "launch", "--workers", "2", "--log-dir", str(self.logs), "--",
             "dcgan", *dcgan_args],
            cwd=ROOT, env=environment(tmp_path / "scratch"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        self.pids = [int(self.process.stdout.readline().split("pid ")[1].split(",")[0]) for _ in range(2)]
        # Both pipes drained all along: a full pipe would stall the launcher's relay of the chief's output.
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [threading.Thread(target=lines.extend, args=(pipe,), daemon=True)
                        for lines, pipe in ((self.stdout, self.process.stdout), (self.stderr, self.process.stderr))]
        for reader in self.readers:
            reader.start()

    def finish(self, timeout: float = 400) -> tuple[int, str]:
        self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=10)
        return self.process.returncode, "".join(self.stderr)

    def log(self, index: int) -> str:
        return (self.logs / f"worker-{index}.log").read_text(errors="replace")


def wait_for(predicate, process: subprocess.Popen, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the launcher ended before the run got there"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def optimizer_iterations(checkpoint_path: str) -> int:
    reader = tf.train.load_checkpoint(checkpoint_path)
    return int(reader.get_tensor("generator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def assert_only_chief_wrote(run: Path, scratch: Path, chief_pids: list[int]) -> None:
    assert {path.name for path in run.iterdir()} == RUN_FOLDER
    # TensorBoard names its event files events.out.tfevents.TIME.HOST.PID.N.v2: one per launch, the chief's.
    writers = sorted(int(path.name.split(".")[-3]) for path in (run / "logs").iterdir())
    assert writers == sorted(chief_pids)
    assert not any(scratch.iterdir()), f"left in the temporary folder: {list(scratch.rglob('*'))}"


def test_two_workers_agree_after_every_step_and_equal_one_process(tiny_dataset, tmp_path):
    dump, steps = tmp_path / "dump", 3
    probe = [sys.executable, str(ROOT / "tests" / "cluster_probe.py"), "--data", str(tiny_dataset),
             "--out", str(tmp_path / "run"), "--dump", str(dump), "--steps", str(steps)]
    status = launch(probe, LaunchConfig(2, tmp_path / "logs"), environment(tmp_path / "scratch"))
    assert status == 0, (tmp_path / "logs" / "worker-1.log").read_text()

    # One process, two replicas, each replica reading the share a worker read: the same global batch and seed.
    config = DCGANConfig(data=str(tiny_dataset), out=str(tmp_path / "single"), strategy="mirrored", steps=steps,
                         **PROBE_CONFIG)
    per_replica = tf.distribute.InputOptions(
        experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA
    )
    train_and_dump(config, mirrored_strategy(StrategyConfig("mirrored")), dump, "single", steps, per_replica)

    for step in range(1, steps + 1):
        worker0, worker1, single = (np.load(dump / f"{name}-step{step}.npz")
                                    for name in ("worker0", "worker1", "single"))
        assert np.all(np.isfinite(worker0["losses"])) and np.all(np.isfinite(worker1["losses"]))
        np.testing.assert_array_equal(worker0["losses"], worker1["losses"])
        names = [name for name in worker0.files if name != "losses"]
        for name in names:
            np.testing.assert_array_equal(worker0[name], worker1[name], err_msg=f"step {step}, weight {name}")
            np.testing.assert_allclose(worker0[name], single[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f"step {step}, weight {name}")
        np.testing.assert_allclose(worker0["losses"], single["losses"], rtol=1e-5)
    first, last = np.load(dump / "worker0-step1.npz"), np.load(dump / f"worker0-step{steps}.npz")
    assert any(not np.array_equal(first[name], last[name]) for name in names), "training changed nothing"
    assert not any((tmp_path / "scratch").iterdir())


@pytest.mark.parametrize("target", ["worker 1", "launcher"])
def test_sigterm_stops_every_worker_at_the_same_step_with_a_checkpoint(tiny_dataset, tmp_path, target):
    run = tmp_path / "run"
    launcher = Launcher(tmp_path, "--data", str(tiny_dataset), "--out", str(run), *TINY, "--steps", "100000",
                        "--sample-every", "2", "--checkpoint-every", "100000")
    wait_for(lambda: list((run / "samples").glob("step_*.png")), launcher.process)
    # "worker 1": one host preempted, the chief not signalled; "launcher": it forwards the signal to all.
    os.kill(launcher.pids[1] if target == "worker 1" else launcher.process.pid, signal.SIGTERM)
    status, stderr = launcher.finish()

    assert status == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1].startswith("stopped by SIGTERM: 2 of 2 worker(s) saved a checkpoint")
    stopped = [last_line(launcher.logs / f"worker-{index}.log") for index in range(2)]
    step = int(stopped[0].split("at step ")[1].split(";")[0])
    assert all(f"stopped by SIGTERM at step {step}; checkpoint saved" in line for line in stopped), stopped
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith(f"ckpt-{step}")
    assert_only_chief_wrote(run, tmp_path / "scratch", [launcher.pids[0]])


def test_a_killed_worker_stops_the_job_in_one_line_and_a_restart_resumes_at_the_saved_step(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    launcher = Launcher(tmp_path, "--data", str(tiny_dataset), "--out", str(run), *TINY, "--steps", "100000",
                        "--checkpoint-every", "2", "--sample-every", "100000")
    wait_for(lambda: (run / "checkpoints" / "checkpoint").is_file(), launcher.process)
    os.kill(launcher.pids[1], signal.SIGKILL)
    status, stderr = launcher.finish()

    assert status == 1
    report = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(report) == 1 and report[0] == stderr.strip().splitlines()[-1], stderr
    assert f"worker 1 (pid {launcher.pids[1]}) was killed by SIGKILL" in report[0]
    assert "stopped the other 1 worker(s)" in report[0] and "--resume" in report[0]
    assert "Traceback" not in stderr
    saved = tf.train.latest_checkpoint(str(run / "checkpoints"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert saved_step >= 2 and optimizer_iterations(saved) == saved_step

    restart = Launcher(tmp_path, "--out", str(run), "--resume", "--steps", str(saved_step + 2))
    status, stderr = restart.finish()
    assert status == 0, stderr
    for index in range(2):
        assert f"resumed from {saved} at step {saved_step}" in restart.log(index)
    assert f"done: step {saved_step + 2}" in "".join(restart.stdout)
    final = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert final.endswith(f"ckpt-{saved_step + 2}") and optimizer_iterations(final) == saved_step + 2
    assert json.loads((run / "config.json").read_text())["strategy"] == "multiworker"
    assert_only_chief_wrote(run, tmp_path / "scratch", [launcher.pids[0], restart.pids[0]])


def test_a_worker_that_fails_at_start_is_named_with_its_error(tmp_path):
    launcher = Launcher(tmp_path, "--data", str(tmp_path / "no-dataset"), "--out", str(tmp_path / "run"), *TINY,
                        "--steps", "2")
    status, stderr = launcher.finish()
    assert status == 1
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: worker ") and "exited with status 2 (error: " in line and "no-dataset" in line
    assert "Traceback" not in stderr


def test_launcher_arguments_and_cluster_roles(tmp_path):
    addresses = ["127.0.0.1:1000", "127.0.0.1:1001", "127.0.0.1:1002"]
    worker = worker_environment({"PATH": "/bin"}, addresses, 2, gpus_per_worker=2)
    assert worker["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert json.loads(worker["TF_CONFIG"]) == {"cluster": {"worker": addresses}, "task": {"type": "worker",
                                                                                          "index": 2}}
    assert role_from_environment(worker) == Role("worker", 2, 3) and not Role("worker", 2, 3).chief
    assert role_from_environment({}).chief and Role("worker", 0, 3).chief and not Role("worker", 0, 3, True).chief
    places = WorkerPlaces(tmp_path / "run", chief=False)
    assert places.scratch.is_dir() and places.checkpoint_dir.parent == places.scratch
    assert places.restore_dir == tmp_path / "run" / "checkpoints"
    scratch = places.scratch
    places.cleanup()
    assert not scratch.exists() and not (tmp_path / "run").exists()
    assert WorkerPlaces(tmp_path / "run", chief=True).checkpoint_dir == tmp_path / "run" / "checkpoints"
    assert describe_exit(-9) == "was killed by SIGKILL" and describe_exit(2) == "exited with status 2"
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        role_from_environment({"TF_CONFIG": "{not json"})
    with pytest.raises(ValueError, match="workers 0 is outside"):
        LaunchConfig(0, tmp_path)
    result = subprocess.run([sys.executable, "-m", "training", "launch", "--workers", "2", "--", "srgan"],
                            cwd=ROOT, env=environment(tmp_path / "scratch"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: launch runs a training command")


PEER_LOST = """
import json, os, signal, sys, time
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
if index == 0:
    print("step 1 of 9", file=sys.stderr, flush=True)
    print("error: worker 0 lost contact with worker 1 (UnavailableError); restart all", file=sys.stderr, flush=True)
    time.sleep(3)
    sys.exit(1)
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_chiefs_lost_contact_line_gives_way_to_the_one_line_naming_the_killed_worker(tmp_path, capfd):
    """The chief may complain before the launcher sees its peer die: the report still holds one error line."""
    status = launch([sys.executable, "-c", PEER_LOST], LaunchConfig(2, tmp_path / "logs", kill_seconds=1))
    stderr = capfd.readouterr().err
    assert status == 1
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [stderr.strip().splitlines()[-1]]
    assert "error: worker 1 (pid " in stderr and "was killed by SIGKILL" in stderr and "step 1 of 9" in stderr
    assert "lost contact" in (tmp_path / "logs" / "worker-0.log").read_text()


def test_a_chiefs_error_line_is_relayed_when_no_worker_failed(tmp_path, capfd):
    script = "import sys; print('error: a warning-like line', file=sys.stderr); print('partial', end='')"
    assert launch([sys.executable, "-c", script], LaunchConfig(1, tmp_path / "logs")) == 0
    captured = capfd.readouterr()
    assert "error: a warning-like line" in captured.err and "partial" in captured.out


def test_error_lines_are_held_and_progress_passes():
    held: list[bytes] = []
    pending, ready = hold_error_lines(b"step 1\nerror: lost contact\n\rbar 5%\rerror: peer gone\nbar 6%\rerr", held)
    assert held == [b"error: lost contact\n", b"error: peer gone\n"]
    assert ready == b"step 1\n\rbar 5%\r" and pending == b"bar 6%\rerr"
    pending, ready = hold_error_lines(pending + b"and 7%", held)
    assert pending == b"" and ready == b"bar 6%\rerrand 7%" and len(held) == 2
