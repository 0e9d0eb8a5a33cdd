.PHONY: test bench

# The whole test suite (installs what it needs first).
test:
	scripts/test

# Portlog against CNCF Distribution, next to the machine's limits; BENCH_ARGS="--quick" for a
# few-second check, see scripts/bench and docs/performance.md.
bench:
	scripts/bench $(BENCH_ARGS)
