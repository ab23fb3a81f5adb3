# Tandem's two commands: `make run` (the app on embedded defaults, with a demo workspace) and `make test`;
# `make test-fast` is the inner loop (unit, channels, crdt: no web client, no browser, under 2 minutes).
VENV ?= .venv
PYTHON ?= python3
WEB_SOURCES := $(shell find web/src web/public web/index.html web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

.PHONY: run test test-fast install web lint audit bench clean lock

# Exactly the locked versions, each checked against its hash (requirements.lock, made by `make lock`); then Tandem
# itself, editable, without resolving anything again. `pip check` fails when pyproject.toml names a dependency the
# lock lacks (run `make lock`).
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	$(VENV)/bin/pip check
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
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=20

# The layers under the app (channels/, crdt/) and the unit tests of server/ parts that need no app: uses Redis and
# PostgreSQL like `make test`, but no web build and no browser.
FAST_TESTS := tests/channels tests/crdt tests/test_admission.py tests/test_control.py tests/test_policy_parents.py

test-fast: install
	$(VENV)/bin/pytest -n 2 --dist loadfile $(FAST_TESTS)
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

# Re-resolve requirements.lock from pyproject.toml: keeps every pin that still fits (a new dependency gets the newest
# version that fits); `make lock UPGRADE=1` moves everything to the newest, `UPGRADE=name` one package. Commit it.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --extra dev --extra s3 \
	  $(if $(filter 1,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE))) \
	  -o requirements.lock pyproject.toml
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) web/node_modules web/dist var
