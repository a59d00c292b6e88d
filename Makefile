# Benchmarks (issues 7 and 14): scripts, not timed tests. See docs/benchmarks.md.
PYTHON ?= .venv/bin/python

.PHONY: bench bench-smoke

# Every row (B1..B11) against its baseline in the same run, interleaved, medians; HTTP rows
# under wrk (installed with apt-get when missing); writes docs/benchmarks.md. 12-15 min
# on 2 cores; a watchdog reports a row group past its limit (or past the 19-minute
# --budget) as "not measured" instead of letting the run hang or pass 20 minutes.
bench:
	$(PYTHON) -m benchmarks run --all --keep-going

# The same code on a tiny workload, one round, docs untouched: checks that it still runs.
bench-smoke:
	$(PYTHON) -m benchmarks run --all --scale tiny --repeat 1 --no-docs
