# The two commands of README.rst: `make demo` and `make test`. Both set up .venv/ first.
.PHONY: setup demo test bench

setup:
	scripts/setup-venv.sh

demo: setup
	.venv/bin/python bin/diaDemo.py demo_repo

test: setup
	scripts/run-tests.sh

bench: setup
	.venv/bin/python bench/run_all.py
