# The README's commands. Run as root (sudo): the lab creates LXC containers, a bridge and mounts.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
INVENTORY ?= inventories/lab.yml
LABENV  := eval "$$($(PY) -m lab env)"
ALLURE  := --alluredir reports/allure-results

.PHONY: help install lab-up lab-down lab-status deploy plan health backup restore restore-db restore-node dr-drill security test test-unit test-cluster report lint

# A bare `make` lists the targets: the first target used to be `install`, which runs apt-get as root.
.DEFAULT_GOAL := help

help:               ## list the targets, one line each (what a bare `make` does)
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^#]*## / {printf "  make %-11s %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))

install:            ## apt, pip (pinned) and npm tools
	bash scripts/install.sh

lab-up: install     ## the homelab-in-a-box: bridge, base, PVE emulator, S3 state store
	$(PY) -m lab up

lab-down:           ## remove every container, bridge, mount and process of the lab
	$(PY) -m lab down

lab-status:         ## the lab's bridge, API, state store and containers
	$(PY) -m lab status

deploy: lab-up      ## full deploy of the inventory on the lab (preflight → … → notify)
	$(LABENV) && $(PYTEST) suites/deploy --inventory $(INVENTORY) $(ALLURE) --clean-alluredir

plan: lab-up        ## what a deploy WOULD change: terraform plan per resource + guard, ansible --check per host (DIFF=1: diffs)
	$(LABENV) && $(PYTEST) suites/deploy --inventory $(INVENTORY) --plan-only $(if $(DIFF),--show-diff)

health:             ## read-only validation of every host and service
	$(LABENV) && $(PYTEST) suites/health --inventory $(INVENTORY) $(ALLURE)

backup:             ## back up every host now: vzdump, the dumps, the encrypted off-site copy (restic), prune, check
	$(LABENV) && $(PY) -m plugins.backup --inventory $(INVENTORY)

# HOST= the host to restore; FROM= a backup volid (make backup and the node's storage list them) or newest.
restore:            ## restore one host (HOST=name [FROM=volid|newest]): archive verified, restored, converged, checked
	@test -n "$(HOST)" || { echo "make restore: HOST is required (expected make restore HOST=<hostname> [FROM=<backup volid>|newest])" >&2; exit 2; }
	$(LABENV) && $(PY) -m plugins.backup restore --inventory $(INVENTORY) --host $(HOST) --from $(or $(FROM),newest)

# HOSTS= the lost hosts to rebuild (default: every host the policy backs up but the runner); their CTs must be gone.
restore-node:       ## rebuild lost hosts from the off-site copy alone (HOSTS=a,b): archive fetched, restored, converged, checked
	$(LABENV) && $(PY) -m plugins.backup restore-node --inventory $(INVENTORY) $(if $(HOSTS),--hosts $(HOSTS))

# HOST= the host, DATABASE= its database (or its container); restored from the newest off-site snapshot.
restore-db:         ## restore one database (HOST=name DATABASE=name) from the off-site copy into its running service
	@test -n "$(HOST)" -a -n "$(DATABASE)" || { echo "make restore-db: HOST and DATABASE are required (expected make restore-db HOST=<hostname> DATABASE=<database>)" >&2; exit 2; }
	$(LABENV) && $(PY) -m plugins.backup restore-db --inventory $(INVENTORY) --host $(HOST) --database $(DATABASE)

# DR_HOSTS= the hosts to drill (default: every host with data but the runner); each one is destroyed and restored.
# DR_DATABASE= host/database restored alone from the off-site copy (default: the drilled hosts' first; none: no such test).
dr-drill:           ## the restore drill: markers, backup, the host destroyed, restored, converged, checked (DR_HOSTS=a,b)
	$(LABENV) && $(PYTEST) suites/dr --inventory $(INVENTORY) $(if $(DR_HOSTS),--dr-hosts $(DR_HOSTS)) $(if $(DR_DATABASE),--dr-database $(DR_DATABASE)) $(ALLURE)

security:           ## read-only audit of every host and route: ssh-audit, sslyze, lynis, OpenSCAP, unattended upgrades, Docker
	$(LABENV) && $(PYTEST) suites/security --inventory $(INVENTORY) $(ALLURE)

# The unit tests need no lab: they run beside `lab up` (make -j2, output not synchronized: make's -O holds a
# command's whole output until it ends, and a cold build's progress would come after ten silent minutes), niced so that a fresh machine's image builds keep the cores first. Either failing stops here: the lab's
# tests start only once the lab is up and every unit passed.
# Then the end-to-end tests, one at a time (they share the lab's homelab), and the lab's own tests on two workers
# (--dist loadfile: each module owns its VMIDs, tests/lab/conftest.py); both parts run, either failing fails.
# reports/tests/*.xml: each test's time (scripts/test_times.py prints them per module).
test: install       ## the project's own tests: unit (in parallel, beside lab up), then end to end, then the lab's own tests on two workers
	$(MAKE) --no-print-directory -j2 lab-up test-unit UNIT_NICE="nice -n 10"
	$(LABENV) || exit 1; status=0; \
	$(PYTEST) tests -m "not unit and not cluster" --ignore tests/lab --junitxml reports/tests/e2e.xml || status=1; \
	$(PYTEST) tests/lab -m "not unit and not cluster" -n 2 --dist loadfile --junitxml reports/tests/lab.xml || status=1; \
	exit $$status

# The lab brought up as a 3-node cluster (it stays one: `make test` after it keeps its nodes); too slow for CI.
test-cluster: install  ## the 3-node cluster end to end on lab-cluster.yml (deploy, rollback, migrate, node down): not in make test
	$(PY) -m lab up --nodes 3
	$(LABENV) && $(PYTEST) tests/cluster -m cluster --durations=10 --junitxml reports/tests/cluster.xml

# --hypothesis-show-statistics: how many mutated inventories and declarations the property-based tests ran.
test-unit: install  ## only the fast tests: no root, no lab (in parallel)
	$(UNIT_NICE) $(PYTEST) tests -m unit -n auto --hypothesis-show-statistics --junitxml reports/tests/unit.xml

report:             ## render reports/allure-results to reports/allure-report (offline), with the trend of earlier renders
	@test -d reports/allure-results || { echo "make report: no reports/allure-results: run make deploy or make health first" >&2; exit 1; }
	rm -rf reports/allure-report
	npx --no-install allure generate reports/allure-results --config allurerc.json
	@echo "report: reports/allure-report/index.html (history: reports/allure-history/history.jsonl)"

lint:               ## what validate.yml checks on pull requests (scripts/lint.py): linters, validators, unit tests
	@test -x $(PY) || { echo "make lint: no $(PY): run 'sudo make install' once (pip and npm tools)" >&2; exit 1; }
	$(PY) scripts/lint.py
