"""Start-up time of the app and the delay between a metrics line and the served loss curve.

1. Start-up: wall time from starting `python launch.py` to the first HTTP 200
   on `/`, against `python -c "import gradio"` timed in the same run (goal:
   at most twice as long). Each is repeated, alternating, and the median kept.
2. Plot delay: the app serves a run folder whose `metrics.jsonl` this script
   appends to at random moments. A gradio_client polls `/poll_training`
   every 0.5 s, as the page's timer does, and the delay is the time from
   writing a line to the first poll answer whose plot data contains its
   step (goal: at most 1 s).

Usage: `python -m benchmarks.bench_app [--repeats 3] [--lines 20]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.5


def time_import_gradio() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], check=True, cwd=REPO_ROOT)
    return time.perf_counter() - started


def time_launch_to_first_page(port: int, workspace: Path) -> float:
    """Start launch.py, wait for the first 200 on `/`, stop it; return the seconds in between."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "launch.py", "--port", str(port), "--workspace", str(workspace)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"launch.py exited with code {process.returncode} before serving a page")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure_start_up(repeats: int, workspace: Path) -> dict:
    from tests.test_app_support import free_port

    imports, launches = [], []
    for _ in range(repeats):
        imports.append(time_import_gradio())
        launches.append(time_launch_to_first_page(free_port(), workspace))
    return {
        "import_gradio_s": statistics.median(imports),
        "launch_to_page_s": statistics.median(launches),
        "ratio": statistics.median(launches) / statistics.median(imports),
        "all_import_s": [round(v, 2) for v in imports],
        "all_launch_s": [round(v, 2) for v in launches],
    }


def measure_plot_delay(lines: int, workspace: Path) -> dict:
    from gradio_client import Client

    from tests.test_app_support import running_app

    workspace.mkdir(mode=0o700)
    run_dir = workspace / "runs" / "bench-run"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"status": "running", "stage": "main", "total_steps": lines}))
    metrics = run_dir / "metrics.jsonl"
    metrics.touch()

    with running_app(workspace) as (_, url, _settings):
        client = Client(url, verbose=False)
        client.predict("bench-run", api_name="/follow_run")
        seen: dict[int, float] = {}
        stop = threading.Event()

        def poll_forever() -> None:
            while not stop.is_set():
                tick = time.perf_counter()
                plot = client.predict(api_name="/poll_training")[0]
                answered = time.perf_counter()
                for step, *_ in plot["data"]:
                    if step is not None:
                        seen.setdefault(int(step), answered)
                stop.wait(max(0.0, POLL_SECONDS - (answered - tick)))

        poller = threading.Thread(target=poll_forever, daemon=True)
        poller.start()
        written: dict[int, float] = {}
        rng = random.Random(0)
        for step in range(1, lines + 1):
            time.sleep(rng.uniform(0.3, 1.2))
            record = {"step": step, "stage_step": step, "epoch": step / 8, "stage": "main", "loss": 7.0 - step / 100,
                      "learning_rate": 1e-4, "grad_norm": 0.3, "elapsed_s": step, "eta_s": lines - step,
                      "total_steps": lines}
            with metrics.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
            written[step] = time.perf_counter()
        deadline = time.perf_counter() + 10
        while len(seen) < lines and time.perf_counter() < deadline:
            time.sleep(0.1)
        stop.set()
        poller.join(timeout=10)

    delays = [seen[step] - written[step] for step in written if step in seen]
    return {
        "lines": lines,
        "seen": len(delays),
        "median_delay_s": statistics.median(delays),
        "max_delay_s": max(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Start-up measurements of each kind (default: 3).")
    parser.add_argument("--lines", type=int, default=20, help="Metrics lines written for the plot delay (default: 20).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-app-") as folder:
        start_up = measure_start_up(args.repeats, Path(folder) / "start-up")
        plot = measure_plot_delay(args.lines, Path(folder) / "plot")
    print(json.dumps({"start_up": start_up, "plot_delay": plot}, indent=2))


if __name__ == "__main__":
    main()
