#!/usr/bin/env bash
# End-to-end check of a built cce_demo image: run it the way users do and drive it through its API.
#
#   scripts/docker_smoke.sh IMAGE            e.g. scripts/docker_smoke.sh cce-demo:smoke
#
# What it does (each step fails the run with a `SMOKE FAIL: ...` line saying what fell short):
#   1. starts IMAGE on a free port of 127.0.0.1 (never another interface) with a fresh named volume on /data
#      (persistent storage, as a Space mounts it), and waits (bounded) until Docker's HEALTHCHECK reports
#      healthy; the app must say it keeps its runs in /data/runs;
#   2. through gradio_client (the host's python, which needs gradio_client): /list_runs shows the shipped
#      run; /classify classifies examples/example-04.png with it; /start_comparison trains a tiny synthetic job
#      and /job_status is polled until it is done (bounded); the run is in /data/runs on the volume;
#   3. checks the app runs as uid 1000 and cannot write the shipped checkpoints/;
#   4. stops the container (it must exit 0 on the stop signal, not be killed), removes it, and runs a new
#      container on the same volume: the job is still listed as done (the volume, not the container, kept it);
#   5. early stops: SMOKE_EARLY_STOPS more containers (default 3), without a volume, are stopped 0, 2 and 4 s
#      after their first HTTP 200, while the start-up speed probe may still be training; each must say that
#      its runs are lost with the container, and exit 0 with no traceback and no native abort in its log;
#   6. prints the image size, seconds to healthy, classify latency, the container's peak memory and the stops,
#      and appends them, with the commit and the host, to SMOKE_RESULTS when that is set;
#   and removes the containers and the volume it made, whatever happens.
#
# The image's HEALTHCHECK command is used as is; only its interval is shortened (SMOKE_HEALTH_INTERVAL,
# default 2s; the image's 30s would make "seconds to healthy" measure the interval, not the app). Set
# SMOKE_HEALTH_INTERVAL= (empty) to keep the image's own timing.
#
# Environment (all optional):
#   PYTHON                 host interpreter with gradio_client (default: python, else python3)
#   SMOKE_HEALTH_INTERVAL  health-check interval while testing (default 2s; empty: the image's)
#   SMOKE_HEALTH_TIMEOUT   seconds to wait for healthy, each start (default 240)
#   SMOKE_JOB_TIMEOUT      seconds for the training job to finish (default 600)
#   SMOKE_JOB              the /start_comparison request (default: a tiny synthetic job, below)
#   SMOKE_RUN_ID           the shipped run to classify with (default cifar10-lt100-standard-ce-cce)
#   SMOKE_DATA_DIR         a host folder with CIFAR npz files, mounted read-only as the data directory (then
#                          SMOKE_JOB can be a real-data job, e.g. '{"preset": "quick"}', to measure its memory)
#   SMOKE_EARLY_STOPS      early-stop containers (default 3; their delays after the first 200 cycle 0, 2, 4 s)
#   SMOKE_RESULTS          a JSON file the figures are appended to (bench/docker_smoke_results.json is the one
#                          the README's Docker figures are generated from: python bench/readme_blocks.py --write README.md)
set -uo pipefail

IMAGE="${1:-}"
if [ -z "$IMAGE" ] || [ "$#" -ne 1 ]; then
    echo "usage: $0 IMAGE" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXAMPLE="$ROOT/examples/example-04.png"
RUN_ID="${SMOKE_RUN_ID:-cifar10-lt100-standard-ce-cce}"
HEALTH_INTERVAL="${SMOKE_HEALTH_INTERVAL-2s}"
HEALTH_TIMEOUT="${SMOKE_HEALTH_TIMEOUT:-240}"
JOB_TIMEOUT="${SMOKE_JOB_TIMEOUT:-600}"
DATA_DIR="${SMOKE_DATA_DIR:-}"
# Far below any budget the app may enforce: one epoch of the quick preset's pair on 10 synthetic classes of
# at most 64 images.
TINY_JOB='{"preset": "quick", "dataset": "synthetic", "epochs": 1, "max_per_class": 64, "synthetic_test_per_class": 10, "seeds": [0]}'
JOB="${SMOKE_JOB:-$TINY_JOB}"
EARLY_STOPS="${SMOKE_EARLY_STOPS:-3}"
EARLY_STOP_DELAYS=(0 2 4)
APP_UID=1000
# What a crash leaves in the log: a Python traceback, or torch aborting in native code (exit 139).
CRASH_PATTERN='Traceback \(most recent call last\)|terminate called|Segmentation fault|core dumped'

# Offline and private for the host-side client too.
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

fail() {
    echo "SMOKE FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }

if [ -z "${PYTHON:-}" ]; then
    PYTHON="$(command -v python || command -v python3 || true)"
fi
command -v docker >/dev/null || fail "docker is not installed"
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable (is dockerd running?)"
[ -n "$PYTHON" ] || fail "no host python found (set PYTHON)"
"$PYTHON" -c "import gradio_client" 2>/dev/null \
    || fail "$PYTHON cannot import gradio_client (pip install -r requirements-dev.txt -c constraints.txt installs the tested version)"
[ -f "$EXAMPLE" ] || fail "missing $EXAMPLE"
[ -z "$DATA_DIR" ] || [ -d "$DATA_DIR" ] || fail "SMOKE_DATA_DIR $DATA_DIR is not a directory"
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "no image $IMAGE (build it first)"

SUFFIX="$$-$(date +%s)"
CONTAINER="cce-smoke-$SUFFIX"
VOLUME="cce-smoke-data-$SUFFIX"
WORK="$(mktemp -d /tmp/cce-smoke.XXXXXX)"
SAMPLER_PID=""
CONTAINERS=()  # every container this run made, removed at the end; $CONTAINER is the current one
CREATED_VOLUME=0

cleanup() {
    local status=$?
    if [ -n "$SAMPLER_PID" ]; then
        kill "$SAMPLER_PID" 2>/dev/null
        wait "$SAMPLER_PID" 2>/dev/null
    fi
    if [ "${#CONTAINERS[@]}" -gt 0 ]; then
        if [ "$status" != 0 ]; then
            echo "---- last container log lines ($CONTAINER) ----" >&2
            docker logs --tail 40 "$CONTAINER" >&2 2>&1
            echo "---- health log ----" >&2
            docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{printf "%.300q" .Output}}{{println}}{{end}}{{end}}' \
                "$CONTAINER" 2>/dev/null | grep . | tail -3 >&2
        fi
        for made in "${CONTAINERS[@]}"; do
            docker rm -f "$made" >/dev/null 2>&1 || echo "warning: could not remove container $made" >&2
        done
    fi
    if [ "$CREATED_VOLUME" = 1 ]; then
        docker volume rm "$VOLUME" >/dev/null 2>&1 || echo "warning: could not remove volume $VOLUME" >&2
    fi
    rm -rf "$WORK"
    if [ "$status" = 0 ]; then
        echo "SMOKE PASSED: $IMAGE"
    else
        echo "SMOKE FAILED: $IMAGE (see the SMOKE FAIL line above)" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on the loopback interface (a tiny race with other programs is acceptable here).
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" \
    || fail "could not find a free loopback port"
URL="http://127.0.0.1:$PORT/"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# Waits until the container's health status is healthy; prints the seconds since $1.
wait_healthy() {
    local since="$1" deadline status running
    deadline=$(( $(date +%s) + HEALTH_TIMEOUT ))
    while :; do
        running="$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)"
        [ "$running" = true ] || fail "the container stopped before it became healthy (exit code $(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER" 2>/dev/null))"
        status="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$CONTAINER")"
        case "$status" in
            healthy) elapsed "$since" "$(now)"; return 0 ;;
            unhealthy) fail "the HEALTHCHECK reports unhealthy" ;;
            none) fail "the image has no HEALTHCHECK" ;;
        esac
        [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy within ${HEALTH_TIMEOUT}s (status: $status)"
        sleep 0.5
    done
}

# The client-side checks; one python process per phase, reading its parameters from the environment.
client() {
    SMOKE_URL="$URL" SMOKE_EXAMPLE="$EXAMPLE" SMOKE_RUN_ID="$RUN_ID" SMOKE_JOB="$JOB" SMOKE_JOB_TIMEOUT="$JOB_TIMEOUT" \
        SMOKE_STATE="$WORK/state.json" "$PYTHON" - "$@" <<'PY'
import json, os, statistics, sys, time

from gradio_client import Client, handle_file

phase = sys.argv[1]
state_path = os.environ["SMOKE_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {}


def fail(message):
    print(f"SMOKE FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def call(what, *args, api_name):
    try:
        return client.predict(*args, api_name=api_name)
    except Exception as error:  # AppError and transport errors alike: report which endpoint
        fail(f"{api_name} ({what}) raised {type(error).__name__}: {error}")


def runs_by_id():
    runs = call("list runs", api_name="/list_runs")
    if not isinstance(runs, list) or not all(isinstance(row, dict) and "run" in row for row in runs):
        fail(f"/list_runs returned {str(runs)[:200]!r}, expected a list of rows with a 'run' key")
    return {row["run"]: row for row in runs}


try:
    client = Client(os.environ["SMOKE_URL"], verbose=False)
except Exception as error:
    fail(f"gradio_client could not connect to {os.environ['SMOKE_URL']}: {type(error).__name__}: {error}")
run_id = os.environ["SMOKE_RUN_ID"]

if phase == "api":
    runs = runs_by_id()
    shipped = runs.get(run_id)
    if shipped is None:
        fail(f"/list_runs does not list the shipped run {run_id} (listed: {sorted(runs)})")
    if shipped.get("status") != "done":
        fail(f"/list_runs shows the shipped run {run_id} as {shipped.get('status')!r}, expected 'done'")
    print(f"/list_runs: {len(runs)} run(s), shipped {run_id} is done")

    latencies = []
    for attempt in range(4):
        started = time.perf_counter()
        result = call("classify examples/example-04.png", handle_file(os.environ["SMOKE_EXAMPLE"]), run_id, api_name="/classify")
        latencies.append(time.perf_counter() - started)
        predictions = result.get("predictions") if isinstance(result, dict) else None
        if not predictions or not all(isinstance(top, list) and top and "class" in top[0] and "probability" in top[0]
                                      for top in predictions.values()):
            fail(f"/classify returned {str(result)[:300]!r}, expected predictions per loss")
        if result.get("run_id") != run_id:
            fail(f"/classify answered for run {result.get('run_id')!r}, asked for {run_id!r}")
    tops = ", ".join(f"{loss}: {top[0]['class']} {top[0]['probability']:.2f}" for loss, top in predictions.items())
    state["classify_first_ms"] = round(latencies[0] * 1000)
    state["classify_warm_ms"] = round(statistics.median(latencies[1:]) * 1000)
    print(f"/classify example-04.png with {run_id}: {tops}; first call {state['classify_first_ms']} ms, "
          f"then median {state['classify_warm_ms']} ms over {len(latencies) - 1}")

    try:
        request = json.loads(os.environ["SMOKE_JOB"])
    except ValueError as error:
        fail(f"SMOKE_JOB is not valid JSON ({error}): {os.environ['SMOKE_JOB']!r}")
    job = call("start the tiny job", request, api_name="/start_comparison")
    if not isinstance(job, dict) or not job.get("job_id"):
        fail(f"/start_comparison returned {str(job)[:300]!r}, expected a job with a job_id")
    job_id = job["job_id"]
    state["job_id"] = job_id
    json.dump(state, open(state_path, "w"))
    print(f"/start_comparison: job {job_id} {job.get('status')} ({json.dumps(request)})")
    open(state_path + ".job-started", "w").close()
    started = time.monotonic()
    deadline = started + float(os.environ["SMOKE_JOB_TIMEOUT"])
    last = None
    while True:
        status = call("poll the job", job_id, api_name="/job_status")
        if status.get("status") != last:
            last = status.get("status")
            print(f"/job_status: {last} after {time.monotonic() - started:.1f}s")
        if last in {"done", "cancelled", "failed", "interrupted", "timed out", "diverged"}:
            break
        if time.monotonic() > deadline:
            fail(f"the job was still {last!r} after {os.environ['SMOKE_JOB_TIMEOUT']}s "
                 f"(progress {status.get('progress')}, {status.get('epochs_done')} epoch(s) done, {status.get('message')!r})")
        time.sleep(1)
    if last != "done":
        fail(f"the job finished as {last!r}, expected 'done' (error: {status.get('error')!r}, message: {status.get('message')!r})")
    state["job_seconds"] = round(time.monotonic() - started, 1)
    summaries = status.get("summaries") or {}
    print(f"job done in {state['job_seconds']}s, {status.get('epochs_done')} epoch(s) on {status.get('device')}; "
          f"final: {json.dumps(summaries)[:200]}")
    listed = runs_by_id().get(job_id)
    if not listed or listed.get("status") != "done":
        fail(f"/list_runs shows the finished job as {listed and listed.get('status')!r}, expected 'done'")
    json.dump(state, open(state_path, "w"))

elif phase == "after-restart":
    job_id = state["job_id"]
    runs = runs_by_id()
    if job_id not in runs:
        fail(f"after the restart /list_runs no longer lists job {job_id} (listed: {sorted(runs)})")
    if runs[job_id].get("status") != "done":
        fail(f"after the restart /list_runs shows job {job_id} as {runs[job_id].get('status')!r}, expected 'done'")
    if run_id not in runs:
        fail(f"after the restart /list_runs does not list the shipped run {run_id}")
    print(f"/list_runs after restart: job {job_id} is still done ({len(runs)} run(s))")
else:
    fail(f"unknown phase {phase}")
PY
}

# ---------------------------------------------------------------------------------------------------- run

IMAGE_BYTES="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
step "image $IMAGE: $(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.0f MB (%.2f GiB)", b / 1e6, b / 1073741824 }')"

docker volume create "$VOLUME" >/dev/null || fail "could not create volume $VOLUME"
CREATED_VOLUME=1

health_args=()
[ -n "$HEALTH_INTERVAL" ] && health_args=(--health-interval "$HEALTH_INTERVAL")
data_args=()
[ -n "$DATA_DIR" ] && data_args=(-v "$(cd "$DATA_DIR" && pwd):/home/user/app/data:ro")

# Starts a new container of IMAGE named $1 on the port, with the volume on /data unless $2 is "no-volume".
# (${a[@]+"${a[@]}"}: an empty array under `set -u` in older bash)
run_container() {
    CONTAINER="$1"
    local volume_args=(-v "$VOLUME:/data")
    [ "${2:-}" = no-volume ] && volume_args=()
    docker run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:7860" ${volume_args[@]+"${volume_args[@]}"} \
        ${data_args[@]+"${data_args[@]}"} ${health_args[@]+"${health_args[@]}"} "$IMAGE" >/dev/null || fail "docker run failed"
    CONTAINERS+=("$CONTAINER")
}

# Stops the current container; fails unless it exits 0 (docker stop kills after 10 s: exit 137) with no crash
# in its log. Prints the seconds taken.
stop_container() {
    local since exit_code
    since="$(now)"
    docker stop "$CONTAINER" >/dev/null || fail "docker stop $CONTAINER failed"
    exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")"
    [ "$exit_code" = 0 ] || fail "on docker stop $CONTAINER exited with $exit_code, expected 0 (137: it was killed after 10 s; 139: it crashed)"
    if docker logs "$CONTAINER" 2>&1 | grep -Eq "$CRASH_PATTERN"; then
        fail "$CONTAINER exited 0 but its log shows a crash: $(docker logs "$CONTAINER" 2>&1 | grep -E "$CRASH_PATTERN" | head -1)"
    fi
    elapsed "$since" "$(now)"
}

step "starting $CONTAINER on $URL (volume $VOLUME on /data)"
START="$(now)"
run_container "$CONTAINER"
HEALTHY_SECONDS="$(wait_healthy "$START")" || exit 1
step "healthy after ${HEALTHY_SECONDS}s"
STARTUP_LOG="$(docker logs "$CONTAINER" 2>&1 | grep -m1 'Runs are kept in' || true)"
echo "${STARTUP_LOG#* INFO cce_demo: }"
case "$STARTUP_LOG" in
    *"/data/runs"*) ;;
    *) fail "with a volume on /data the app does not keep its runs in /data/runs (log: ${STARTUP_LOG:-nothing})" ;;
esac

# The container's memory while the job runs, sampled inside it every 0.2 s the way `docker stats` computes it
# (cgroup usage minus inactive file cache). It starts when the job has been submitted and stops on a marker.
MEMORY_SAMPLER='
cg=/sys/fs/cgroup
if [ -f $cg/memory.current ]; then usage=$cg/memory.current stat=$cg/memory.stat key=inactive_file
elif [ -f $cg/memory/memory.usage_in_bytes ]; then usage=$cg/memory/memory.usage_in_bytes stat=$cg/memory/memory.stat key=total_inactive_file
else echo "no cgroup memory files" >&2; exit 1; fi
peak=0 samples=0
while [ ! -e /tmp/.cce-smoke-stop ]; do
    inactive=$(awk -v k=$key "\$1 == k { print \$2 }" $stat)
    used=$(( $(cat $usage) - ${inactive:-0} ))
    [ $used -gt $peak ] && peak=$used
    samples=$((samples + 1))
    sleep 0.2
done
echo "$peak $samples"'
(
    while [ ! -e "$WORK/state.json.job-started" ]; do sleep 0.1; done
    exec docker exec "$CONTAINER" sh -c "$MEMORY_SAMPLER" > "$WORK/mem.txt"
) &
SAMPLER_PID=$!

step "API: list, classify, train"
client api || exit 1
docker exec "$CONTAINER" touch /tmp/.cce-smoke-stop || fail "could not stop the memory sampler"
wait "$SAMPLER_PID" || fail "the memory sampler failed"
SAMPLER_PID=""
read -r PEAK_JOB_BYTES SAMPLES < "$WORK/mem.txt" || true
[ -n "${SAMPLES:-}" ] && [ "$SAMPLES" -gt 0 ] || fail "could not sample the container's memory during the job"
PEAK_JOB="$(awk -v b="$PEAK_JOB_BYTES" 'BEGIN { printf "%.0f MiB", b / 1048576 }')"
# The cgroup's own high-water mark since the container started (cgroup v2 memory.peak, else v1); it counts
# page cache too, so it is an upper bound.
PEAK_CGROUP_BYTES="$(docker exec "$CONTAINER" sh -c \
    'cat /sys/fs/cgroup/memory.peak 2>/dev/null || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null' || true)"
if [ -n "$PEAK_CGROUP_BYTES" ]; then
    PEAK_CGROUP="$(awk -v b="$PEAK_CGROUP_BYTES" 'BEGIN { printf "%.0f MiB", b / 1048576 }')"
else
    PEAK_CGROUP="n/a (no memory.peak / memory.max_usage_in_bytes visible)"
fi
echo "memory: peak during the job $PEAK_JOB ($SAMPLES samples); cgroup high-water mark since start $PEAK_CGROUP"
JOB_ID="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["job_id"])' "$WORK/state.json")"
docker exec "$CONTAINER" test -f "/data/runs/$JOB_ID/run.json" || fail "the job's run is not in /data/runs on the volume"
echo "the job's run is in /data/runs/$JOB_ID on the volume"

step "uid and read-only files"
PID1_UID="$(docker exec "$CONTAINER" awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/1/status)" \
    || fail "could not read the app process's uid"
[ "$PID1_UID" = "$APP_UID $APP_UID $APP_UID $APP_UID" ] || fail "the app (pid 1) runs with uids '$PID1_UID', expected $APP_UID"
PID1_CMD="$(docker exec "$CONTAINER" sh -c "tr '\\0' ' ' < /proc/1/cmdline")"
EXEC_UID="$(docker exec "$CONTAINER" id -u)"
[ "$EXEC_UID" = "$APP_UID" ] || fail "the image's USER has uid $EXEC_UID, expected $APP_UID"
echo "app process (pid 1: ${PID1_CMD% }) runs as uid $APP_UID"
if docker exec "$CONTAINER" sh -c 'touch checkpoints/.smoke-write-test' 2>/dev/null; then
    fail "uid $APP_UID could create a file in the shipped checkpoints/"
fi
if docker exec "$CONTAINER" sh -c "echo x >> 'checkpoints/$RUN_ID/run.json'" 2>/dev/null; then
    fail "uid $APP_UID could modify the shipped checkpoints/$RUN_ID/run.json"
fi
if docker exec "$CONTAINER" sh -c "rm -f 'checkpoints/$RUN_ID/run.json'" 2>/dev/null \
    && ! docker exec "$CONTAINER" test -e "checkpoints/$RUN_ID/run.json"; then
    fail "uid $APP_UID could delete the shipped checkpoints/$RUN_ID/run.json"
fi
echo "checkpoints/ cannot be written by uid $APP_UID (create, append and delete refused)"
docker exec "$CONTAINER" sh -c 'touch /data/runs/.smoke-write-test && rm /data/runs/.smoke-write-test' \
    || fail "uid $APP_UID cannot write the /data volume"

step "stop, remove, and run a new container on the same volume"
STOP_SECONDS="$(stop_container)" || exit 1
echo "stopped cleanly (exit 0) in ${STOP_SECONDS}s"
docker rm "$CONTAINER" >/dev/null || fail "could not remove $CONTAINER"
RESTART="$(now)"
run_container "$CONTAINER-2"
RESTART_HEALTHY_SECONDS="$(wait_healthy "$RESTART")" || exit 1
echo "a new container on the same volume is healthy after ${RESTART_HEALTHY_SECONDS}s"
client after-restart || exit 1
stop_container >/dev/null || exit 1

# Waits until the current container answers HTTP on the port (bounded); prints the seconds since $1.
wait_first_200() {
    local since="$1"
    SMOKE_URL="$URL" SMOKE_TIMEOUT="$HEALTH_TIMEOUT" "$PYTHON" - <<'PY' || fail "$CONTAINER never answered HTTP"
import os, sys, time, urllib.request
deadline = time.monotonic() + float(os.environ["SMOKE_TIMEOUT"])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(os.environ["SMOKE_URL"], timeout=2)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
    elapsed "$since" "$(now)"
}

step "early stops: $EARLY_STOPS container(s) stopped soon after their first HTTP 200"
EARLY_RESULTS=()
EARLY_JSON=()
for round in $(seq 1 "$EARLY_STOPS"); do
    delay="${EARLY_STOP_DELAYS[$(( (round - 1) % ${#EARLY_STOP_DELAYS[@]} ))]}"
    since="$(now)"
    run_container "cce-smoke-$SUFFIX-early-$round" no-volume
    first_200="$(wait_first_200 "$since")" || exit 1
    if [ "$round" = 1 ]; then
        storage_line="$(docker logs "$CONTAINER" 2>&1 | grep -m1 'Runs are kept in' || true)"
        case "$storage_line" in
            *"lost when the container is removed"*) echo "without a volume: ${storage_line#* INFO cce_demo: }" ;;
            *) fail "without a volume the app does not say its runs are lost with the container (log: ${storage_line:-nothing})" ;;
        esac
    fi
    sleep "$delay"
    probe="finished"
    docker logs "$CONTAINER" 2>&1 | grep -q 'per probe step' || probe="still running"
    stop_seconds="$(stop_container)" || exit 1
    line="first 200 after ${first_200}s, stopped ${delay}s later (speed probe $probe): exit 0 in ${stop_seconds}s"
    echo "early stop $round: $line"
    EARLY_RESULTS+=("$line")
    EARLY_JSON+=("{\"first_200_seconds\": $first_200, \"delay_seconds\": $delay, \"probe_running\": $([ "$probe" = "still running" ] && echo true || echo false), \"exit_code\": 0, \"stop_seconds\": $stop_seconds}")
done

STATE="$(cat "$WORK/state.json")"
field() { "$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$STATE" "$1"; }

echo
echo "== figures for $IMAGE"
printf '%-44s %s\n' "image size" "$(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.0f MB (%.2f GiB)", b / 1e6, b / 1073741824 }')"
printf '%-44s %s\n' "seconds to healthy (first start)" "${HEALTHY_SECONDS} s (health interval ${HEALTH_INTERVAL:-as in image})"
printf '%-44s %s\n' "docker stop (graceful, exit 0)" "${STOP_SECONDS} s"
printf '%-44s %s\n' "seconds to healthy (new container, same /data)" "${RESTART_HEALTHY_SECONDS} s"
printf '%-44s %s\n' "classify latency, first call (loads model)" "$(field classify_first_ms) ms"
printf '%-44s %s\n' "classify latency, warm (median of 3)" "$(field classify_warm_ms) ms"
printf '%-44s %s\n' "job, submitted to done" "$(field job_seconds) s"
printf '%-44s %s\n' "peak memory during the job (as docker stats)" "$PEAK_JOB ($SAMPLES samples, 0.2 s apart)"
printf '%-44s %s\n' "cgroup high-water mark since start (w/ cache)" "$PEAK_CGROUP"
for index in "${!EARLY_RESULTS[@]}"; do
    printf '%-44s %s\n' "early stop $((index + 1))" "${EARLY_RESULTS[$index]}"
done

if [ -n "${SMOKE_RESULTS:-}" ]; then
    # One record per smoke run, with what it ran on: figures are only comparable with the host and commit.
    early_list="$(IFS=,; echo "[${EARLY_JSON[*]}]")"
    SMOKE_IMAGE="$IMAGE" SMOKE_IMAGE_BYTES="$IMAGE_BYTES" SMOKE_HEALTHY="$HEALTHY_SECONDS" SMOKE_STOP="$STOP_SECONDS" \
    SMOKE_RESTART_HEALTHY="$RESTART_HEALTHY_SECONDS" SMOKE_PEAK_JOB="$PEAK_JOB_BYTES" SMOKE_PEAK_CGROUP="${PEAK_CGROUP_BYTES:-}" \
    SMOKE_SAMPLES="$SAMPLES" SMOKE_EARLY="$early_list" SMOKE_STATE_JSON="$STATE" SMOKE_JOB_REQUEST="$JOB" \
    SMOKE_REAL_DATA="$([ -n "$DATA_DIR" ] && echo 1 || echo 0)" SMOKE_HEALTH="${HEALTH_INTERVAL:-as in image}" \
    SMOKE_COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    SMOKE_DIRTY="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo 1 || echo 0)" \
        "$PYTHON" - "$SMOKE_RESULTS" <<'PY' || fail "could not write $SMOKE_RESULTS"
import datetime, json, os, platform, sys
from pathlib import Path

env = os.environ
state = json.loads(env["SMOKE_STATE_JSON"])
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
record = {
    "date": datetime.date.today().isoformat(),
    "commit": env["SMOKE_COMMIT"] + ("+changes" if env["SMOKE_DIRTY"] == "1" else ""),
    "host": {"cpu": cpu, "cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)},
    "image": env["SMOKE_IMAGE"],
    "image_bytes": int(env["SMOKE_IMAGE_BYTES"]),
    "job": json.loads(env["SMOKE_JOB_REQUEST"]),
    "real_data": env["SMOKE_REAL_DATA"] == "1",
    "health_interval": env["SMOKE_HEALTH"],
    "healthy_seconds": float(env["SMOKE_HEALTHY"]),
    "restart_healthy_seconds": float(env["SMOKE_RESTART_HEALTHY"]),
    "stop_after_job_seconds": float(env["SMOKE_STOP"]),
    "classify_first_ms": state["classify_first_ms"],
    "classify_warm_ms": state["classify_warm_ms"],
    "job_seconds": state["job_seconds"],
    "peak_job_mib": round(int(env["SMOKE_PEAK_JOB"]) / 2**20),
    "memory_samples": int(env["SMOKE_SAMPLES"]),
    "peak_cgroup_mib": round(int(env["SMOKE_PEAK_CGROUP"]) / 2**20) if env["SMOKE_PEAK_CGROUP"].strip().isdigit() else None,
    "early_stops": json.loads(env["SMOKE_EARLY"]),
}
path = Path(sys.argv[1])
runs = json.loads(path.read_text())["runs"] if path.exists() else []
path.write_text(json.dumps({"runs": runs + [record]}, indent=1) + "\n")
print(f"figures appended to {path}")
PY
fi
