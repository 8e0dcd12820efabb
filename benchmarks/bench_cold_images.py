"""The stack's images built with nothing cached: this checkout against a baseline checkout.

What a new user without a registry waits for first: the offline Debian base (mmdebstrap or
debootstrap + `docker import`), then both images. Opt-in, because it needs a Docker daemon
whose images nobody needs: `BENCH_COLD_DOCKER_HOST` (e.g. `unix:///tmp/cold/docker.sock` of a
throwaway `dockerd --data-root DIR --exec-root DIR -H unix:///tmp/cold/docker.sock --bridge
cold0 --iptables=false`, with a bridge of its own made first: `ip link add cold0 type bridge;
ip addr add 172.31.250.1/24 dev cold0; ip link set cold0 up`. Not `--bridge none`: a daemon
started so deletes `docker0`, the bridge of the machine's own daemon). Before each build
every `ci-stack/*` image of THAT daemon is removed (never of the daemon `docker` talks to by
default: refused if it is the same one), and the build gets an empty CI_STACK_CACHE_DIR (no
kept root fs, no kept dependencies).

Run: `BENCH_COLD_DOCKER_HOST=... python -m benchmarks.bench_cold_images [--rounds 1]`.
Rounds alternate the checkouts; medians of the wall time per checkout and the ratio
this/baseline go to <BENCH_DIR>/cold_images.json (with each build's per-image seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_stack import BASELINE_ENV, HERE, Checkout, _baseline
from benchmarks.results import write_result

COLD_HOST_ENV = "BENCH_COLD_DOCKER_HOST"
APP = "backend.stack_profile:profile"  # the demo app (older checkouts build it by default)
BUILD_TIMEOUT = 1800.0


def daemon_id(host: str | None) -> str:
    """Which daemon answers at `host`: its data root (daemons on one machine share their ID)."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if host:
        env["DOCKER_HOST"] = host
    done = subprocess.run(
        ["docker", "info", "--format", "{{.DockerRootDir}}"],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def empty_daemon(host: str) -> None:
    """Remove every ci-stack/* image of the throwaway daemon at `host` (and what they use)."""
    env = {**os.environ, "DOCKER_HOST": host}
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "ci-stack/*"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    tags = [t for t in listed.stdout.split() if not t.endswith(":<none>")]
    if tags:
        subprocess.run(["docker", "rmi", "--force", *tags], env=env, capture_output=True,
                       timeout=300, check=True)  # fmt: skip
    subprocess.run(["docker", "image", "prune", "--force"], env=env, capture_output=True,
                   timeout=300, check=True)  # fmt: skip


def one_build(checkout: Checkout, host: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cold-cache-", dir="/var/tmp") as cache:
        env = {
            **os.environ,
            "DOCKER_HOST": host,
            "CI_STACK_CACHE_DIR": cache,
            "STACK_APP": APP,
            "PYTHONPATH": str(checkout.root),
        }
        env.pop("VIRTUAL_ENV", None)
        started = time.perf_counter()
        done = subprocess.run(
            [str(checkout.python), "-m", "orchestrator.images", "build", "--json"],
            cwd=checkout.root, env=env, capture_output=True, text=True,
            timeout=BUILD_TIMEOUT, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"the cold build failed in {checkout.root}:\n{tail}")
    images = {r["name"]: r["seconds"] for r in json.loads(done.stdout)}
    base = [line for line in done.stderr.splitlines() if "bootstrapped" in line]
    return {"seconds": round(seconds, 1), "images": images, "base_line": base[-1:] or None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", default=None, help=f"checkout to compare (${BASELINE_ENV})")
    args = parser.parse_args(argv)
    host = os.environ.get(COLD_HOST_ENV)
    if not host:
        why = f"{COLD_HOST_ENV} names no throwaway Docker daemon (see the module's docstring)"
        print(f"cold images: skipped: {why}", file=sys.stderr)
        print(write_result("cold_images", {"skipped": why}))
        return 0
    if daemon_id(host) == daemon_id(os.environ.get("DOCKER_HOST")):
        print(
            f"cold images: {COLD_HOST_ENV} is the default daemon: refused (its images would "
            "be removed). Fix: start a throwaway dockerd and name its socket",
            file=sys.stderr,
        )
        return 2
    checkouts = {"current": Checkout(HERE, Path(sys.executable))}
    baseline = _baseline(args.baseline)
    if baseline is not None:
        checkouts = {"baseline": baseline, **checkouts}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in checkouts}
    names = list(checkouts)
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            empty_daemon(host)
            runs[name].append(one_build(checkouts[name], host))
            print(f"cold images {name}: {json.dumps(runs[name][-1])}", file=sys.stderr)
    empty_daemon(host)
    medians = {n: round(statistics.median(r["seconds"] for r in runs[n]), 1) for n in names}
    result: dict[str, Any] = {"rounds": args.rounds, "medians_seconds": medians, "runs": runs}
    if "baseline" in medians:
        result["ratio"] = round(medians["current"] / medians["baseline"], 3)
    print(write_result("cold_images", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
