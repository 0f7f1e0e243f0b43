# The two commands of README.md. Both install what they need first (scripts/install.sh is idempotent).
PYTHON ?= python3

.PHONY: setup demo test test-fast

setup:
	bash scripts/install.sh

# Main job: a 64 s session of package media through every module (du-process), timeline PNG + HTML (see README).
demo: setup
	$(PYTHON) -m nova_infant.cli demo --out demo-output

# Every test: the default (fast) run, then the slow end-to-end checks.
test: setup
	$(PYTHON) -m pytest -q
	$(PYTHON) -m pytest -q -m slow || [ $$? -eq 5 ]  # 5 = no slow test collected

test-fast:
	$(PYTHON) -m pytest -q
