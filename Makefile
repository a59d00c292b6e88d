# Benchmarks (issue 7): scripts, not timed tests. See docs/benchmarks.md.
PYTHON ?= .venv/bin/python

.PHONY: bench bench-smoke

# Every row (B1..B8) against its baseline, interleaved, medians; writes docs/benchmarks.md.
# About 9 min on 2 cores; a watchdog reports a row group past its limit (or past the
# 20-minute --budget) as "not measured" instead of letting the run hang.
bench:
	$(PYTHON) -m benchmarks run --all --keep-going

# The same code on a tiny workload, one round, docs untouched: checks that it still runs.
bench-smoke:
	$(PYTHON) -m benchmarks run --all --scale tiny --repeat 1 --no-docs
