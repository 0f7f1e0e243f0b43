# The two commands of README.md. Both install what they need first (scripts/install.sh is idempotent) into a
# virtual environment, $(VENV), made from $(PYTHON): the system's python3 by default (Debian 12 and Ubuntu 24.04
# refuse pip installs into it, PEP 668). Every later step runs with the venv's python and its bin/ first on PATH
# (du-process, nova-infant).
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test test-fast

setup:
	PYTHON="$(PYTHON)" VENV="$(VENV)" bash scripts/install.sh

# Main job: a 64 s session of package media through every module (du-process), timeline PNG + HTML (see README).
demo: setup
	$(VENV_PY) -m nova_infant.cli demo --out demo-output

# Every test: the default (fast) run, then the slow end-to-end checks.
test: setup
	$(VENV_PY) -m pytest -q
	$(VENV_PY) -m pytest -q -m slow || [ $$? -eq 5 ]  # 5 = no slow test collected

test-fast:
	$(VENV_PY) -m pytest -q
