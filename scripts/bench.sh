#!/usr/bin/env bash
# Times one CycleGAN training iteration of this project against a PyTorch 1.13 CPU
# implementation of the same networks and training step (BENCH_TORCH), and prints a table of
# the medians.
#
# For each preset it runs, round after round, the Go benchmark of every build and the PyTorch
# script once, PyTorch between the Go builds (Go default, PyTorch, Go OpenBLAS; the next round
# in reverse order), so that every Go run has a PyTorch run next to it. Each run is a process
# of its own under /usr/bin/time -v, which reports the peak resident set size.
#
#   Go:      the model package's test binary, BenchmarkTrainStep (cpu preset: 64 px crops,
#            ngf = ndf = 32, 6 residual blocks) or BenchmarkTrainStep128 (the same networks on
#            128 px crops). Batch 1, image pools on, LSGAN. The benchmark runs one step before
#            timing (it allocates the ops' buffers) and reports the mean wall time of the
#            timed steps (ms/step) and the process CPU time per step (cpu-ms/step).
#   PyTorch: the reference script with 2 threads; it skips 2 warm-up iterations and prints
#            the median of the timed ones.
#
# The table gives, per build and preset, the median over the rounds of each run's figure, the
# median peak RSS, the ratio of both to PyTorch's, and the mean 1-minute load average seen at
# the start of the runs. On a shared machine compare the ratios of runs made close together,
# and the Go CPU time, which varies less than the wall time.
#
# Usage: scripts/bench.sh
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS       rounds per preset [3]
#   BENCH_PRESETS      presets to run, from "cpu" and "128" ["cpu 128"]
#   BENCH_BUILDS       Go builds, from "default" and "openblas" ["default openblas"]; the
#                      OpenBLAS build needs cgo and libopenblas-dev and is skipped with a note
#                      when it does not build
#   BENCH_GO_STEPS     timed Go steps per run [10]
#   BENCH_TORCH_ITERS  timed PyTorch iterations per run [10]
#   BENCH_TORCH        the PyTorch script [/work/shared/bench/torch_cyclegan.py]
#   BENCH_PYTHON       the Python interpreter that has torch [/usr/bin/python3]
#   BENCH_TORCH_ENV    environment assignments for the PyTorch runs only [none], for example
#                      OMP_WAIT_POLICY=PASSIVE: on a loaded machine OpenMP's spinning threads
#                      lose most of their time slices and PyTorch runs many times slower
#   BENCH_TIMEOUT      seconds allowed for one run before it is stopped and left out [900]
#   BENCH_KEEP         a folder to keep the binaries and every run's output in [a temporary
#                      folder, removed at the end]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-3}
presets=${BENCH_PRESETS:-"cpu 128"}
builds=${BENCH_BUILDS:-"default openblas"}
go_steps=${BENCH_GO_STEPS:-10}
torch_iters=${BENCH_TORCH_ITERS:-10}
torch_script=${BENCH_TORCH:-/work/shared/bench/torch_cyclegan.py}
python=${BENCH_PYTHON:-/usr/bin/python3}
read -r -a torch_env <<<"${BENCH_TORCH_ENV:-}"
run_timeout=${BENCH_TIMEOUT:-900}

if [ -n "${BENCH_KEEP:-}" ]; then
	work=$BENCH_KEEP
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi

for tool in /usr/bin/time timeout "$python"; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench.sh: $tool is missing; install it (Debian: time, coreutils, python3)" >&2
		exit 1
	fi
done
if [ ! -f "$torch_script" ]; then
	echo "bench.sh: PyTorch script $torch_script not found; set BENCH_TORCH" >&2
	exit 1
fi

# Build the test binaries once, so that no compilation runs between the timed processes.
built=()
for build in $builds; do
	case $build in
	default) tags=() ;;
	openblas) tags=(-tags openblas) ;;
	*)
		echo "bench.sh: unknown build $build in BENCH_BUILDS; use default or openblas" >&2
		exit 1
		;;
	esac
	if go test -c "${tags[@]}" -o "$work/model.$build.test" ./model 2>"$work/build.$build.log"; then
		built+=("$build")
	else
		echo "bench.sh: the $build build failed and is left out (see below)" >&2
		tail -5 "$work/build.$build.log" >&2
	fi
done
if [ "${#built[@]}" -eq 0 ]; then
	echo "bench.sh: no Go build succeeded" >&2
	exit 1
fi

# loadavg prints the 1-minute load average.
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run NAME CMD... runs one timed process and appends "name ms cpu_ms rss_mb load" to
# results.txt; a run that fails or times out is reported and left out.
runs=0
run() {
	local name=$1
	shift
	runs=$((runs + 1))
	local out="$work/run.$runs.$name.log"
	local load
	load=$(loadavg)
	if ! timeout "$run_timeout" /usr/bin/time -v "$@" >"$out" 2>&1; then
		echo "bench.sh: run $name failed or timed out after ${run_timeout}s; see $out" >&2
		return 0
	fi
	local ms cpu rss
	rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$out")
	case $name in
	torch.*)
		ms=$(awk '/^median_s_per_iter/ {printf "%.1f", $2 * 1000}' "$out")
		cpu=-
		;;
	*)
		# The benchmark line ends in "<value> cpu-ms/step <value> ms/step" or the reverse.
		ms=$(awk '/^BenchmarkTrainStep/ {for (i = 2; i <= NF; i++) if ($i == "ms/step") printf "%.1f", $(i-1)}' "$out")
		cpu=$(awk '/^BenchmarkTrainStep/ {for (i = 2; i <= NF; i++) if ($i == "cpu-ms/step") printf "%.1f", $(i-1)}' "$out")
		;;
	esac
	if [ -z "$ms" ]; then
		echo "bench.sh: run $name printed no timing; see $out" >&2
		return 0
	fi
	echo "$name $ms $cpu $rss $load" >>"$work/results.txt"
	printf '  %-24s %9s ms/it  cpu %7s ms  rss %5s MB  load %s\n' "$name" "$ms" "$cpu" "$rss" "$load" >&2
}

: >"$work/results.txt"
echo "bench.sh: $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)," \
	"PyTorch environment: ${BENCH_TORCH_ENV:-default}" >&2
for preset in $presets; do
	case $preset in
	cpu) bench=BenchmarkTrainStep size=64 ;;
	128) bench=BenchmarkTrainStep128 size=128 ;;
	*)
		echo "bench.sh: unknown preset $preset in BENCH_PRESETS; use cpu or 128" >&2
		exit 1
		;;
	esac
	for round in $(seq "$rounds"); do
		echo "bench.sh: preset $preset, round $round of $rounds" >&2
		order=("${built[@]}")
		if [ $((round % 2)) -eq 0 ]; then
			order=()
			for ((i = ${#built[@]} - 1; i >= 0; i--)); do order+=("${built[i]}"); done
		fi
		# PyTorch runs after the first Go build, so it sits between the Go runs.
		for i in "${!order[@]}"; do
			build=${order[i]}
			run "go-$build.$preset" "$work/model.$build.test" -test.run '^$' \
				-test.bench "^${bench}\$" -test.benchtime "${go_steps}x"
			if [ "$i" -eq 0 ]; then
				run "torch.$preset" env "${torch_env[@]}" "$python" "$torch_script" --size "$size" \
					--ngf 32 --ndf 32 --blocks 6 --iters "$torch_iters" --threads 2
			fi
		done
	done
done

# The table: medians per build and preset, and their ratios to PyTorch's.
awk '
function median(list,    n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	key = $1
	ms[key] = ms[key] " " $2
	if ($3 != "-") cpu[key] = cpu[key] " " $3
	rss[key] = rss[key] " " $4
	load[key] += $5
	runs[key]++
	if (!(key in seen)) { seen[key] = 1; order[++count] = key }
}
END {
	printf "%-10s %-6s %5s %14s %12s %12s %10s %10s %6s\n", "build", "preset", "runs", "median ms/it", "Go cpu ms/it", "peak RSS MB", "time/torch", "RSS/torch", "load"
	for (i = 1; i <= count; i++) {
		key = order[i]
		split(key, part, ".")
		build = part[1]; sub(/^go-/, "", build)
		torchKey = "torch." part[2]
		m = median(ms[key]); r = median(rss[key])
		c = (key in cpu) ? sprintf("%.1f", median(cpu[key])) : "-"
		tr = "-"; rr = "-"
		if (build != "torch" && (torchKey in ms)) {
			tr = sprintf("%.2f", m / median(ms[torchKey]))
			rr = sprintf("%.2f", r / median(rss[torchKey]))
		}
		printf "%-10s %-6s %5d %14.1f %12s %12.0f %10s %10s %6.2f\n", build, part[2], runs[key], m, c, r, tr, rr, load[key] / runs[key]
	}
}' "$work/results.txt"
