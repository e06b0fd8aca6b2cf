# Every target runs inside the project's own virtual environment (.venv), which `make install`
# creates: Debian 12+ and Ubuntu 23.04+ refuse `pip install` into the system Python (PEP 668).
# PYTHON is only used to create that environment: `make install PYTHON=python3.12`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Left empty, pip takes torch from its configured indexes. Set it to a CPU-only wheel index
# on machines where a plain `pip install torch` would pull a multi-GB CUDA build.
TORCH_INDEX_URL ?=
TORCH_VERSION ?= 2.13.0
# uv installs the locked packages; pip does where uv cannot be had (INSTALLER=pip).
INSTALLER ?= uv
export GRADIO_ANALYTICS_ENABLED ?= False
export HF_HUB_DISABLE_TELEMETRY ?= 1

.PHONY: install system-deps venv lock browser-deps run test test-gpu lint format ci bench browser-test

## system-deps: the Debian packages the app reads pictures' text with (packages.txt, which a
## Space installs the same way). Root or sudo installs them; without either, one sentence says
## how, and everything else still installs: the app answers without them.
SYSTEM_PACKAGES := $(shell grep -v '^\#' packages.txt 2>/dev/null)
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "Reading the text in a picture needs Tesseract with English and Arabic data ($$missing); install them with your system's package manager (https://tesseract-ocr.github.io/tessdoc/Installation.html). Everything else works without them."; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	elif sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; \
	else echo "Reading the text in a picture needs: sudo apt-get install$$missing  (everything else works without them)."; fi

## install: .venv with torch first (kept if already there, so a GPU build stays), then the
## exact versions of requirements-dev.lock (the app's requirements.txt plus tests and tools)
install: $(PY) system-deps
	@$(PY) -c "import torch" 2>/dev/null \
		|| $(PY) -m pip install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
ifeq ($(INSTALLER),uv)
	@$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	$(PY) -m uv pip install --python $(PY) --no-deps --require-hashes -r requirements-dev.lock
else
	$(PY) -m pip install --no-deps --require-hashes -r requirements-dev.lock
endif
	$(PY) -m pip check

venv: $(PY)
$(PY):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
		echo "Could not create $(VENV) with $(PYTHON): on Debian or Ubuntu, install the venv module first: sudo apt-get install python3-venv" >&2; \
		exit 1; }
	$(PY) -m pip install -q --upgrade pip

## lock: re-pin requirements-dev.lock after changing requirements*.txt. torch stays outside
## the lock (CPU or CUDA build depends on the machine); the CPU wheel in TORCH_WHEELS is what
## its own dependencies are resolved against, so no CUDA-only package enters the lock.
TORCH_WHEELS ?= /opt/wheels
lock: $(PY)
	@$(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	echo "torch==$(TORCH_VERSION)" > $(VENV)/torch-pin.txt
	$(PY) -m uv pip compile requirements-dev.txt --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --find-links $(TORCH_WHEELS) \
		-c $(VENV)/torch-pin.txt --generate-hashes --no-emit-package torch \
		--no-header -o requirements-dev.lock

## browser-deps: Debian's Chromium and axe-core for the browser tests (never `playwright install`),
## and the DejaVu fonts the text-reading tests draw their signs with
browser-deps:
	@{ command -v chromium >/dev/null 2>&1 && [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; } || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-dejavu-core; fi; }
	@[ ! -f package.json ] || [ -f node_modules/axe-core/axe.min.js ] \
		|| npm ci --no-audit --no-fund --silent

## run: the app on its embedded default (or whatever VQA_VILT_MODEL / VQA_BLIP2_MODEL name)
run: $(PY)
	$(PY) app.py

## test: the whole CPU suite, offline; the browser tests' Chromium and axe-core come first
## (a no-op once installed), so `make install && make test` works on a fresh machine
test: browser-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest

## test-gpu: the GPU checks alone (they skip without CUDA)
test-gpu:
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m gpu

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## ci: what .ci/run does on a fresh machine
ci: install browser-deps lint test

## browser-test: the app in headless Chromium (Playwright + axe-core); part of `make test` too
browser-test: browser-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/browser tests/test_app.py

.PHONY: mutation
## mutation: mutmut on the core modules (answer_norm, metric, images, quality, fit), each
## against its own test files, with the score per module (docs/testing.md); not part of
## `make test`: it takes a long time. MUTATION_ARGS: module stems to run only those.
MUTATION_ARGS ?=
mutation: $(PY)
	HF_HUB_OFFLINE=1 $(PY) tools/mutation.py $(MUTATION_ARGS)

## bench: every benchmark, CPU-sized (GPU when present); each prints ours vs plain side by side
bench:
	HF_HUB_OFFLINE=1 $(PY) bench/answer_overhead.py
	HF_HUB_OFFLINE=1 $(PY) bench/phone_photo_intake.py
	HF_HUB_OFFLINE=1 $(PY) bench/full_size.py
	HF_HUB_OFFLINE=1 $(PY) bench/cold_start.py
	HF_HUB_OFFLINE=1 $(PY) bench/concurrency.py

.PHONY: demo-vilt
## demo-vilt: retrain the embedded ViLT demo model from scratch on easy-VQA (CPU, see README)
DEMO_VILT_DIR ?= vqa_core/demo_models/vilt-easyvqa
DEMO_VILT_ARGS ?= --dataset easy-vqa --from_scratch --hidden_size 128 --num_hidden_layers 4 \
	--num_attention_heads 4 --intermediate_size 256 --patch_size 8 --tokenizer_vocab_size 300 \
	--augment none --repeat_answer_types shape=2 --learning_rate 5e-4 --weight_decay 0.01 --max_grad_norm 1.0 \
	--warmup_steps 0.05 --lr_scheduler_type cosine --num_train_epochs 9 \
	--per_device_train_batch_size 64 --per_device_eval_batch_size 128 --save_strategy steps \
	--save_steps 500 --save_total_limit 1 --report_to none --logging_steps 100 --disable_tqdm true \
	--dataloader_num_workers 1 --do_train --do_eval --seed 0
demo-vilt:
	HF_HUB_OFFLINE=1 $(PY) -m train $(DEMO_VILT_ARGS) --output_dir $(DEMO_VILT_DIR)
	rm -rf $(DEMO_VILT_DIR)/training_args.bin $(DEMO_VILT_DIR)/checkpoint-*

.PHONY: demo-blip2
## demo-blip2: retrain the embedded BLIP-2 demo model (train.generative's recipe, 1 thread)
demo-blip2:
	HF_HUB_OFFLINE=1 $(PY) -m train.generative --output_dir vqa_core/demo_models/blip2-easyvqa

## demo-models: both embedded demo models; `make -j2 demo-models` trains them side by side
demo-models: demo-vilt demo-blip2

.PHONY: serve serve-stop
## serve: the models on a local Ray Serve and the page as its client: a Ray head with
## SERVE_CPUS CPUs, one Serve application per model (VILT / BLIP2: demo, real, a hub id or a
## folder; SERVE_ARGS: more key=value settings of serving.deployments.ServeSettings) on port
## 8000 (/vilt, /blip2), and the page on GRADIO_SERVER_PORT (7860) in the background.
## Needs requirements-serve.txt.
VILT ?= demo
BLIP2 ?= demo
SERVE_CPUS ?= $(shell nproc 2>/dev/null || echo 2)
SERVE_ARGS ?=
SERVE_DIR ?= .serve
# Ray 2.60 starts clusters with token authentication, but its `serve` CLI only sends the
# token when this says so.
serve serve-stop: export RAY_AUTH_MODE ?= token
# `ray start` refuses to start a token cluster without a token, and nothing creates one on a
# fresh machine: Ray's own command writes ~/.ray/auth_token (owner-only here) when neither it
# nor RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH exists, and leaves an existing token alone. Every
# Ray and Serve command below then finds it where Ray looks by default.
RAY_TOKEN = [ "$$RAY_AUTH_MODE" != token ] || ( umask 077 && $(VENV)/bin/ray get-auth-token --generate > /dev/null )
# serving.RAY_CLUSTER_ENV (HAProxy straight to the model replicas), for every Ray process;
# one machine needs no 30 s for load balancers to forget a stopped replica.
serve: export RAY_SERVE_ENABLE_HA_PROXY ?= 1
serve: export RAY_SERVE_THROUGHPUT_OPTIMIZED ?= 1
serve: export RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S ?= 2
serve: $(PY)
	@$(PY) -c "import ray.serve" 2>/dev/null || { echo "make serve needs Ray Serve: $(PY) -m pip install -r requirements-serve.txt" >&2; exit 1; }
	@$(RAY_TOKEN)
	@# `wait` below would take another server on these ports for the models or the page.
	@$(PY) -m serving free 127.0.0.1:8000 127.0.0.1:$${GRADIO_SERVER_PORT:-7860}
	@mkdir -p $(SERVE_DIR)
	$(PY) -m serving config vilt=$(VILT) blip2=$(BLIP2) $(SERVE_ARGS) --host 127.0.0.1 > $(SERVE_DIR)/config.yaml
	THP_MEM_ALLOC_ENABLE=$${THP_MEM_ALLOC_ENABLE:-1} PYTHONPATH=$(CURDIR) $(VENV)/bin/ray start --head --num-cpus $(SERVE_CPUS) --dashboard-host 127.0.0.1 --disable-usage-stats
	PYTHONPATH=$(CURDIR) $(VENV)/bin/serve run --address auto --non-blocking $(SERVE_DIR)/config.yaml
	@# `serve run` only submits a config file: wait for both models before the page asks them.
	@$(PY) -m serving wait http://127.0.0.1:8000/vilt/info http://127.0.0.1:8000/blip2/info --timeout 600 \
		|| { $(VENV)/bin/serve status; exit 1; }
	nohup $(PY) app.py --backend http://127.0.0.1:8000 > $(SERVE_DIR)/page.log 2>&1 & echo $$! > $(SERVE_DIR)/page.pid
	@$(PY) -m serving wait http://127.0.0.1:$${GRADIO_SERVER_PORT:-7860}/ --timeout 120 \
		|| { tail -20 $(SERVE_DIR)/page.log; exit 1; }
	@echo "Page: http://127.0.0.1:$${GRADIO_SERVER_PORT:-7860}  models: http://127.0.0.1:8000/vilt/info, /blip2/info  page log: $(SERVE_DIR)/page.log  stop: make serve-stop"

## serve-stop: stops what `make serve` started: the page, the Serve application, the Ray head
serve-stop:
	-@[ -f $(SERVE_DIR)/page.pid ] && kill $$(cat $(SERVE_DIR)/page.pid) 2>/dev/null; rm -f $(SERVE_DIR)/page.pid
	-@$(RAY_TOKEN)
	-$(VENV)/bin/serve shutdown -y
	-$(VENV)/bin/ray stop
