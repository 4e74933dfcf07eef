# The workshop's commands. `just` alone lists them.
# No just yet? `.ci/install-tools` installs it (and mdbook) in seconds.

set positional-arguments := true

tools := `.ci/install-tools || true`
export PATH := tools + ":" + env_var('PATH')

# List the recipes.
default:
    @just --list --unsorted

# Lesson 1's demo: a slow database, no cache. `just lesson-1 --serve` keeps it up on :3000.
lesson-1 *args:
    cargo run -q -p lesson-01-naive -- "$@"

# Serve lesson 1 on 127.0.0.1:${PORT:-3000} until Ctrl-C.
serve-1 *args:
    cargo run -q -p lesson-01-naive -- --serve "$@"

# Check your solution to exercise 1 (edit crates/exercise-01-naive/src/starter.rs).
exercise-1:
    cargo test -q -p exercise-01-naive --features starter

# Exercise 1's hint K, one at a time: `just hint-1 1` is gentle, the last is nearly the answer.
hint-1 k: (_hint "crates/exercise-01-naive/HINTS.md" k)

# Lesson 2's demo: cache-aside with Redis: miss, hit, TTL, write, Redis outage.
lesson-2 *args:
    cargo run -q -p lesson-02-cache-aside -- "$@"

# Serve lesson 2 on 127.0.0.1:${PORT:-3000} until Ctrl-C.
serve-2 *args:
    cargo run -q -p lesson-02-cache-aside -- --serve "$@"

# Check your solution to exercise 2 (edit crates/exercise-02-cache-aside/src/starter.rs).
exercise-2:
    cargo test -q -p exercise-02-cache-aside --features starter

# Exercise 2's hint K, one at a time: `just hint-2 1` is gentle, the last is nearly the answer.
hint-2 k: (_hint "crates/exercise-02-cache-aside/HINTS.md" k)

# Lesson 3's outage experiment (short; `--long` is the book's run). `just lesson-3 --serve` serves it.
lesson-3 *args:
    cargo run -q -p lesson-03-stale-fallback -- "$@"

# Serve lesson 3 on 127.0.0.1:${PORT:-3000} until Ctrl-C (CACHE_MODE=fallback|swr|cache-first).
serve-3 *args:
    cargo run -q -p lesson-03-stale-fallback -- --serve "$@"

# Check your solution to exercise 3 (edit crates/exercise-03-stale-fallback/src/starter.rs).
exercise-3:
    cargo test -q -p exercise-03-stale-fallback --features starter

# Exercise 3's hint K, one at a time: `just hint-3 1` is gentle, the last is nearly the answer.
hint-3 k: (_hint "crates/exercise-03-stale-fallback/HINTS.md" k)

# Lesson 4: each query before and after its index, with the plan (LAB_INDEX_ROWS, default 200000).
lesson-4 *args:
    cargo run -q -p lesson-04-indexing -- "$@"

# Check your solution to exercise 4 (edit crates/exercise-04-indexing/src/starter.rs).
exercise-4:
    cargo test -q -p exercise-04-indexing --features starter

# Exercise 4's hint K, one at a time: `just hint-4 1` is gentle, the last is nearly the answer.
hint-4 k: (_hint "crates/exercise-04-indexing/HINTS.md" k)

# Lesson 5: every buffer experiment, small, on private servers (~20 s). Configs: `just lesson-5 tune --ram 16GB --cpus 8 --db postgres`.
lesson-5 *args:
    cargo run -q -p lesson-05-buffer-tuning -- "$@"

# Check your solution to exercise 5 (edit crates/exercise-05-work-mem/src/starter.rs).
exercise-5:
    cargo test -q -p exercise-05-work-mem --features starter

# Exercise 5's hint K, one at a time: `just hint-5 1` is gentle, the last is nearly the answer.
hint-5 k: (_hint "crates/exercise-05-work-mem/HINTS.md" k)

# Lesson 6: a real nginx edge in front of an origin, every experiment short (<1 min; `--long` is the book's). `just lesson-6 --serve` serves it.
lesson-6 *args: _nginx
    cargo run -q -p lesson-06-http-edge -- "$@"

# Serve lesson 6's edge on 127.0.0.1:${PORT:-3000}, its origin behind it, until Ctrl-C.
serve-6 *args: _nginx
    cargo run -q -p lesson-06-http-edge -- --serve "$@"

# Check your solution to exercise 6 (edit crates/exercise-06-http-edge/src/starter.rs).
exercise-6:
    @.ci/install-nginx --nginx-only
    cargo test -q -p exercise-06-http-edge --features starter

# Exercise 6's hint K, one at a time: `just hint-6 1` is gentle, the last is nearly the answer.
hint-6 k: (_hint "crates/exercise-06-http-edge/HINTS.md" k)

# Lesson 7: a hot key expires under load: the herd per strategy (naive, single-flight, xfetch, lease), TTL jitter, negative caching (<1 min; `--long` is the book's).
lesson-7 *args:
    cargo run -q -p lesson-07-stampede -- "$@"

# Serve lesson 7 on 127.0.0.1:${PORT:-3000} until Ctrl-C (STRATEGY=single-flight|lease|xfetch|naive, TTL_JITTER, NEGATIVE_TTL_SECS).
serve-7 *args:
    cargo run -q -p lesson-07-stampede -- --serve "$@"

# Check your solution to exercise 7 (edit crates/exercise-07-stampede/src/starter.rs).
exercise-7:
    cargo test -q -p exercise-07-stampede --features starter

# Exercise 7's hint K, one at a time: `just hint-7 1` is gentle, the last is nearly the answer.
hint-7 k: (_hint "crates/exercise-07-stampede/HINTS.md" k)

# Lesson 8: two instances (L1 in process, Redis, PostgreSQL): staleness per invalidation design, the stale-set race, the lost invalidation (<1 min; `--long` is the book's).
lesson-8 *args:
    cargo run -q -p lesson-08-layers -- "$@"

# Serve lesson 8 on 127.0.0.1:${PORT:-3000} until Ctrl-C; start a second with PORT=3002 (INVALIDATION=notify|pubsub|tracking|ttl, FILL=versioned|lease|naive).
serve-8 *args:
    cargo run -q -p lesson-08-layers -- --serve "$@"

# Check your solution to exercise 8 (edit crates/exercise-08-layers/src/starter.rs).
exercise-8:
    cargo test -q -p exercise-08-layers --features starter

# Exercise 8's hint K, one at a time: `just hint-8 1` is gentle, the last is nearly the answer.
hint-8 k: (_hint "crates/exercise-08-layers/HINTS.md" k)

# Lesson 9: a private Redis Cluster and a PostgreSQL read replica: keys per slot, a master killed under load per client mode, a reshard, full coverage, one Redis vs a cluster, replica lag (~1.5 min; `--long`, the book's, ~2 min).
lesson-9 *args:
    cargo run -q -p lesson-09-scale-out -- "$@"

# Serve lesson 9 on 127.0.0.1:${PORT:-3000} over a private 6-node cluster and a primary + replica, until Ctrl-C (CLIENT_MODE=bounded|defaults|replica-reads, FILL_FROM=lsn|replica|primary|read-your-writes).
serve-9 *args:
    cargo run -q -p lesson-09-scale-out -- --serve "$@"

# Check your solution to exercise 9 (edit crates/exercise-09-scale-out/src/starter.rs); spawns a private primary and standby.
exercise-9:
    cargo test -q -p exercise-09-scale-out --features starter

# Exercise 9's hint K, one at a time: `just hint-9 1` is gentle, the last is nearly the answer.
hint-9 k: (_hint "crates/exercise-09-scale-out/HINTS.md" k)

# Install nginx, its purge module and wrk (as root on Debian; elsewhere it prints the command).
_nginx:
    @.ci/install-nginx

# Every HTTP lesson under load while PostgreSQL and Redis are stopped, paused, slowed, killed and reset, in turn (~80 s).
chaos *args:
    cargo run -q -p chaos -- "$@"

# The whole test suite, against real servers (nextest when installed).
test *args:
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace "$@"; else cargo test --workspace "$@"; fi

# Print hint K of a HINTS.md (the hint-N recipes call it).
_hint file k:
    @awk -v k="$2" '/^## Hint / {on = ($3 == k); if (on) found = 1} on {print} END {if (!found) {print "There is no hint " k " in " FILENAME "; ask for 1 to 4."; exit 1}}' "$1"

# Prove every exercise starter and wrong variant fails, and every solution passes.
check-exercises:
    .ci/check-exercises

# Reproduce the numbers: criterion benches against real servers.
bench *args:
    cargo bench "$@"

# Run the benches and write the book's tables, charts and stamp (--quick: minutes, not for the book; --reuse: re-render).
report *args:
    cargo run -q -p report -- "$@"

# Where lesson 2's HIT spends its time under load: the short hit_path bench under perf, top functions per server thread (~1 min; needs perf).
profile-hit *threads="l2-hit-default minimal-hit lesson-3": _nginx
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v perf >/dev/null; then
        echo "profile-hit needs perf: apt-get install linux-perf (Debian) or linux-tools-\$(uname -r) (Ubuntu)" >&2
        exit 1
    fi
    # The bench binary's path, from cargo's own line (wherever the target dir is).
    built=$(cargo bench -p benches --bench hit_path --no-run 2>&1) || { echo "$built" >&2; echo "profile-hit: the bench did not build" >&2; exit 1; }
    bin=$(echo "$built" | sed -n 's/.*Executable .*(\(.*hit_path-[0-9a-f]*\)).*/\1/p' | tail -1)
    [ -x "$bin" ] || { echo "profile-hit: could not find the hit_path bench binary in cargo's output" >&2; exit 1; }
    mkdir -p target/perf
    # Pinned as `just report` pins: wrk on CPU 0, the servers on CPU 1.
    if [ "$(nproc)" -ge 2 ]; then export LAB_PIN_CLIENT=0 LAB_PIN_SERVERS=1; fi
    # DWARF call graphs: release builds have no frame pointers, but they
    # keep the unwind tables perf needs.
    # The bench's own table goes to a file: under perf its figures are not
    # measurements (`cargo bench --bench hit_path` measures).
    echo "profiling the short hit_path bench (~1 min; its output: target/perf/hit_path.log)…"
    LAB_QUICK=1 perf record -q -F 499 --call-graph dwarf,8192 -o target/perf/hit_path.data -- "$bin" --bench \
        > target/perf/hit_path.log 2>&1 \
        || { echo "perf record failed (target/perf/hit_path.log); as a user, perf may need: sudo sysctl kernel.perf_event_paranoid=1" >&2; exit 1; }
    for t in {{threads}}; do
        echo "== thread $t: share of its samples, by function (self time)"
        perf report -i target/perf/hit_path.data --comm "$t" --no-children --percentage relative \
            --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-150 | head -20 || true
    done
    echo "callers of one function: perf report -i target/perf/hit_path.data --comm THREAD --no-children -S FUNCTION -G"

# Build the book and serve it on http://127.0.0.1:3001.
book:
    mdbook serve book --hostname 127.0.0.1 --port 3001

# Build the book and fail on a broken include.
book-build:
    .ci/book

# What the harness would use for PostgreSQL, Redis and MariaDB, with versions and port conflicts.
doctor:
    cargo run -q -p lab --bin doctor

# Start PostgreSQL, Redis and MariaDB in Docker, on loopback.
services-up:
    docker compose up -d --wait

# Stop the Docker services.
services-down:
    docker compose down

# Build or reuse the local server images from Debian's packages (no registry needed) and print export lines: `eval "$(just images)"`.
images:
    @.ci/images/build

# Install just, mdbook, lychee and a compose validator into target/tools.
tools:
    @.ci/install-tools

# What CI runs.
ci:
    .ci/run
