# Tandem's two commands: `make run` (the app on embedded defaults, with a demo workspace) and `make test`.
VENV ?= .venv
PYTHON ?= python3
WEB_SOURCES := $(shell find web/src web/public web/index.html web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

.PHONY: run test install web lint lint-imports audit bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build --silent

web: web/dist/index.html

run: install web
	$(VENV)/bin/tandem demo
	$(VENV)/bin/tandem serve

test: install web
	$(VENV)/bin/lint-imports
	cd web && npm test --silent
	$(VENV)/bin/pytest -n 2 --dist loadfile

# The layering (docs/ARCHITECTURE.md): import-linter's contracts in pyproject.toml. make test runs it first.
lint-imports: install
	$(VENV)/bin/lint-imports

lint: install
	$(VENV)/bin/ruff check server channels crdt tests bench
	$(VENV)/bin/ruff format --check server channels crdt
	$(VENV)/bin/mypy

# Known vulnerabilities in the Python and npm dependencies. Needs the network (the advisory databases), so CI
# does not run it; run it before a release and when dependencies change (docs/SECURITY.md).
audit: install web/node_modules/.installed
	$(VENV)/bin/pip install --quiet pip-audit
	$(VENV)/bin/pip-audit --skip-editable
	cd web && npm audit

clean:
	rm -rf $(VENV) web/node_modules web/dist var
