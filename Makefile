# Thin wrapper over CMake. Targets:
#   make setup   install missing Debian packages (scripts/setup.sh; cached by a stamp)
#   make build   configure build/ (Release) if needed and build everything
#   make demo    build, then train the Fashion-MNIST CNN (build/fashion_cnn; files in
#                build/demo/; more epochs: make demo DEMO_ARGS="--epochs 30")
#   make check   tests in build/, then in build-asan/ (ASan+UBSan, leaks fail the run);
#                last line of output: "N passed, N failed". Includes the layering check.
#   make fuzz    build the libFuzzer targets (build-fuzz/, clang) and fuzz each for
#                FUZZ_SECONDS (default 600); make check runs them over their corpora
#                and for FUZZ_CHECK_SECONDS (default 3) each
#   make stress  8 threads compiling their first programs at once, 50 rounds (make check: 5)
#   make layers  the layering check alone (scripts/check-layers.sh: no include from a
#                higher layer of src/, no include cycle)
#   make bench   build, then run every benchmark
#   make bench-torch  build, then compare with PyTorch (bench/torch/run.sh; installs Debian's
#                python3-torch and libjemalloc2 if missing)
#   make lessons run the 25 lesson experiments in full mode and print the summary
#                (LESSONS="14 25" for some; LESSONS_ARGS=--quick for the quick modes)
#   make install install the library, header, pkg-config file and CMake package into
#                PREFIX (default /usr/local; PREFIX=$(mktemp -d) for a private tree)
#   make deb     build the Debian packages libjitgrad0 and libjitgrad-dev (cpack) into
#                $(BUILD_DIR)
#   make docs    the API reference (Doxygen over include/jitgrad.h) into
#                $(BUILD_DIR)/docs/html; every public symbol must be documented
#   make clean   remove the build trees
# With $CI set (and not 0/false), configures with -DJG_WERROR=ON; override: JG_WERROR=ON|OFF.

SHELL       := /bin/bash
CMAKE       ?= cmake
BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
FUZZ_DIR    ?= build-fuzz
FUZZ_SECONDS       ?= 600
FUZZ_CHECK_SECONDS ?= 3
FUZZ_CC     ?= clang-14
BUILD_TYPE  ?= Release
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
DEMO        ?= fashion_cnn
DEMO_ARGS   ?=
PREFIX      ?= /usr/local

ifneq ($(filter-out 0 false no off,$(CI)),)
JG_WERROR   ?= ON
else
JG_WERROR   ?= OFF
endif

CONFIG_ARGS      := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DJG_WERROR=$(JG_WERROR) -DJG_SANITIZE=OFF $(CMAKE_ARGS)
ASAN_CONFIG_ARGS := -DCMAKE_BUILD_TYPE=Debug -DJG_WERROR=$(JG_WERROR) -DJG_SANITIZE=ON $(CMAKE_ARGS)
FUZZ_CONFIG_ARGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=$(FUZZ_CC) -DJG_FUZZ=ON -DJG_WERROR=$(JG_WERROR) $(CMAKE_ARGS)

# The setup stamp is keyed on the script's content (and the extra-packages knob),
# so setup reruns only when scripts/setup.sh changes.
SETUP_KEY   := $(shell { cat scripts/setup.sh; echo "$$JG_SETUP_EXTRA_PACKAGES"; } 2>/dev/null | sha256sum | cut -c1-16)
SETUP_STAMP := $(BUILD_DIR)/.setup-$(SETUP_KEY)

# configure DIR ARGS: (re)run cmake when DIR is unconfigured or ARGS changed.
define configure
	@if [ ! -f $(1)/CMakeCache.txt ] || [ "$$(cat $(1)/.jg-configure-args 2>/dev/null)" != "$(strip $(2))" ]; then \
	  echo "$(CMAKE) -S . -B $(1) $(strip $(2))"; \
	  $(CMAKE) -S . -B $(1) $(2) && echo "$(strip $(2))" > $(1)/.jg-configure-args; \
	fi
endef

.PHONY: all setup configure build demo check asan-build fuzz-build fuzz test layers stress bench bench-torch lessons install deb docs clean help
.NOTPARALLEL:
MAKEFLAGS += --no-print-directory

all: build

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile

setup: $(SETUP_STAMP)
	@:

$(SETUP_STAMP): scripts/setup.sh
	@bash scripts/setup.sh
	@mkdir -p $(BUILD_DIR) && rm -f $(BUILD_DIR)/.setup-* && touch $@

configure: setup
	$(call configure,$(BUILD_DIR),$(CONFIG_ARGS))

build: configure
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

demo: build
	@mkdir -p $(BUILD_DIR)/demo
	./$(BUILD_DIR)/$(DEMO) --out $(BUILD_DIR)/demo $(DEMO_ARGS)

asan-build: setup
	$(call configure,$(ASAN_DIR),$(ASAN_CONFIG_ARGS))
	$(CMAKE) --build $(ASAN_DIR) -j $(JOBS)

fuzz-build: setup
	$(call configure,$(FUZZ_DIR),$(FUZZ_CONFIG_ARGS))
	$(CMAKE) --build $(FUZZ_DIR) -j $(JOBS)

fuzz: fuzz-build
	@scripts/fuzz.sh run $(FUZZ_DIR) $(FUZZ_SECONDS)

# Tests of build/ only (no sanitizer pass).
test: build
	@scripts/run-tests.sh $(BUILD_DIR)

# Both passes always run (even if one fails to build); old results are dropped first,
# and --summary decides the status and prints the total as the last line.
check: setup
	@rc=0; rm -f $(BUILD_DIR)/test-summary.txt $(ASAN_DIR)/test-summary.txt; \
	if $(MAKE) build; then \
	  JG_TEST_JOBS=$(JOBS) scripts/run-tests.sh $(BUILD_DIR) || rc=1; \
	else echo "check: build of $(BUILD_DIR) failed" >&2; rc=1; fi; \
	if $(MAKE) asan-build; then \
	  JG_TEST_JOBS=$(JOBS) scripts/run-tests.sh $(ASAN_DIR) --sanitize || rc=1; \
	else echo "check: build of $(ASAN_DIR) failed" >&2; rc=1; fi; \
	rm -f $(FUZZ_DIR)/test-summary.txt; \
	if $(MAKE) fuzz-build; then \
	  scripts/fuzz.sh check $(FUZZ_DIR) $(FUZZ_CHECK_SECONDS) || rc=1; \
	else echo "check: build of $(FUZZ_DIR) failed" >&2; rc=1; fi; \
	scripts/run-tests.sh --summary $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR) || rc=1; \
	exit $$rc

layers:
	@scripts/check-layers.sh

stress: build
	JG_STRESS_ROUNDS=50 ./$(BUILD_DIR)/tests/test_jit_concurrent --verbose

bench: build
	@set -e; n=0; \
	while IFS= read -r b; do \
	  [ -n "$$b" ] || continue; n=$$((n + 1)); \
	  echo "== $$(basename $$b)"; "$$b" < /dev/null; \
	done < $(BUILD_DIR)/jg-benches.txt; \
	[ $$n -gt 0 ] || echo "bench: no benchmarks (bench/*.c)"

bench-torch: build
	@bash bench/torch/run.sh $(BUILD_DIR)

lessons: build
	@scripts/lessons.sh $(BUILD_DIR) $(LESSONS_ARGS) $(LESSONS)

install: build
	$(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)

docs: configure
	$(CMAKE) --build $(BUILD_DIR) --target docs
	@if [ -s $(BUILD_DIR)/docs/warnings.txt ]; then cat $(BUILD_DIR)/docs/warnings.txt; \
	  echo "docs: undocumented or malformed (above)" >&2; exit 1; fi
	@echo "docs: $(BUILD_DIR)/docs/html/index.html"

deb: build
	cd $(BUILD_DIR) && cpack -G DEB
	@dpkg-deb -I $$(ls -t $(BUILD_DIR)/libjitgrad0_*.deb | head -n 1) | sed -n 's/^ *\(Package\|Version\|Depends\):/  &/p'

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
