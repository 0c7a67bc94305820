# Every target first makes sure .venv holds intforge and its test dependencies; the stamp
# file makes that a no-op until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast

demo: $(STAMP)
	$(VENV)/bin/intforge demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 -m "not slow"

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	tools/install-hdl.sh $(VENV)
	tools/install-fpga.sh
	touch $@
