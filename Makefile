# Every target sets up what it needs (scripts/bootstrap.sh is idempotent and fast when done).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENGINE_OPS_WORK ?= $(CURDIR)/.work
export ENGINE_OPS_WORK
WITH_ENV := source $(ENGINE_OPS_WORK)/env.sh &&

.PHONY: help bootstrap engine-images demo demo-clean test unit sanity lint integration reliability molecule build clean bench bench-image ee-context

help:
	@echo "make demo           set up, then upgrade a local fleet to a broken release and roll it back"
	@echo "make test           set up and run every test layer (unit sanity lint integration reliability molecule)"
	@echo "make unit|sanity|lint|integration|reliability|molecule   one layer"
	@echo "make engine-images  build the reference Engine images (cached by content)"
	@echo "make demo-clean     remove the demo fleet and its brains"
	@echo "make build          build the collection tarball into .work/dist"
	@echo "make bench          run every benchmark (image, brain, PostgreSQL, fleet, memory) and write docs/performance.md"
	@echo "make bench-image    benchmark image rollback against the manual commands"
	@echo "make ee-context     build the AWX execution environment's build context into build/context"

bootstrap:
	@bash scripts/bootstrap.sh

engine-images: bootstrap
	@$(WITH_ENV) python tests/engine/build.py

# The whole story on a local fleet of three Engines: production 2.3.1, an upgrade to a broken release,
# turns written in the bad window, the rollback with its plan and summary, and /health at the end.
DEMO = $(WITH_ENV) ansible-playbook -i demo/inventory.yml
demo: engine-images
	@$(DEMO) demo/clean.yml
	@$(DEMO) demo/demo.yml
	@$(DEMO) playbooks/upgrade.yml -e version=2.4.0-broken-errors
	@$(DEMO) demo/bad_window.yml
	@$(DEMO) playbooks/rollback.yml -e version=v2.3.1 -e 'reason="half of all turns fail on 2.4.0-broken-errors"'
	@$(DEMO) playbooks/health.yml

demo-clean: bootstrap
	@$(WITH_ENV) ansible-playbook -i demo/inventory.yml demo/clean.yml

test: engine-images
	@$(WITH_ENV) python scripts/run_tests.py all

unit: bootstrap
	@$(WITH_ENV) python scripts/run_tests.py unit

sanity: bootstrap
	@$(WITH_ENV) python scripts/run_tests.py sanity

lint: bootstrap
	@$(WITH_ENV) python scripts/run_tests.py lint

integration: engine-images
	@$(WITH_ENV) python scripts/run_tests.py integration

reliability: engine-images
	@$(WITH_ENV) python scripts/run_tests.py reliability

molecule: engine-images
	@$(WITH_ENV) python scripts/run_tests.py molecule

build: bootstrap
	@$(WITH_ENV) ansible-galaxy collection build --force --output-path $(ENGINE_OPS_WORK)/dist .

ee-context: bootstrap
	@mkdir -p build
	@$(WITH_ENV) ansible-galaxy collection build --force --output-path build .
	@mv -f build/engine_ops-lifecycle-*.tar.gz build/engine_ops-lifecycle.tar.gz
	@$(WITH_ENV) ansible-builder create -f execution-environment.yml -c build/context
	@echo "build context: build/context (ansible-builder build -t <image> where registries are reachable)"

# Every benchmark, side by side with the manual commands and community modules, then the figures and plots of this
# run into docs/performance.md (bench/results/*.json and *.svg). About 18 minutes on 2 cores once the brains of
# bench/brain.py are cached (~/.cache/engine_ops/bench); the first run also generates them.
bench: engine-images
	@$(WITH_ENV) python bench/image_rollback.py --rounds 3
	@$(WITH_ENV) python bench/brain.py --sizes 10,100,1000 --pg-size 200 --rounds 2
	@$(WITH_ENV) python bench/fleet.py --sizes 1,5,20 --runs data:fast,image:fast,data:realistic,data:fast:free@20
	@$(WITH_ENV) python bench/report.py

bench-image: engine-images
	@$(WITH_ENV) python bench/image_rollback.py --rounds 5

clean:
	rm -rf $(ENGINE_OPS_WORK)/reports $(ENGINE_OPS_WORK)/dist tests/output build
