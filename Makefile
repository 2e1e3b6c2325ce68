# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(or $(SANDGRAIN_TEST_DATA),../shared/data)
HOST ?= 127.0.0.1
PORT ?= 8000

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench clean sysdeps screenshots

# Debian's bowtie: the peer the tests cross-check the off-target search against; Debian's
# chromium: the browser the web tests drive with Playwright (never a downloaded browser);
# Debian's postgresql: the server the database tests start in a temporary folder (its initdb and
# pg_ctl live under /usr/lib/postgresql/<version>/bin, off the PATH); Debian's fasttree: the
# starting tree of a strains collection (`sandgrain strains tree`); Debian's minimap2, samtools,
# bcftools and tabix: the aligner and caller of `sandgrain calling`, and its read simulator, ART.
SYSDEPS := bowtie chromium fasttree postgresql minimap2 samtools bcftools tabix \
  art-nextgen-simulation-tools
SYSBINS := bowtie fasttree chromium minimap2 samtools bcftools bgzip art_illumina

sysdeps:
	@( for b in $(SYSBINS); do command -v $$b >/dev/null 2>&1 || exit 1; done; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ) || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(SYSDEPS); }

# Debian's python3-venv where the system Python lacks it.
$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Rule Set 3's trained model comes from the rs3 package, installed without its dependencies: rs3
# 0.0.18 pins numpy<=1.26.4, lightgbm<=3.3.5 and scikit-learn<=1.0.2, which cannot install on
# Python 3.11 next to numpy 2. What it needs at run time (lightgbm, pandas, joblib, sglearn) is
# declared in pyproject.toml; the tests check its scores against the rs3 README's.
RS3 := "rs3>=0.0.18"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(RS3)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(RS3)
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/sandgrain demo --data "$(DATA)"
	$(BIN)/sandgrain serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests $(wildcard benchmarks)

test: sysdeps lint
	$(BIN)/python -m pytest -q

bench: sysdeps $(VENV)/.installed-dev
	$(BIN)/python benchmarks/genome_import.py
	$(BIN)/python benchmarks/offtargets.py
	$(BIN)/python benchmarks/web_design.py
	$(BIN)/python benchmarks/beacon.py
	$(BIN)/python benchmarks/metadata_db.py
	$(BIN)/python benchmarks/fanout_overhead.py

# The pictures the docs show (docs/images/): the demo store in a temporary home, the app on a
# loopback port, Debian's chromium driven by Playwright; ONLY="a.png b.png" for some of them.
screenshots: sysdeps $(VENV)/.installed-dev
	$(BIN)/python scripts/screenshots.py --data "$(DATA)" $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
