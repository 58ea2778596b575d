# SPDX-License-Identifier: MIT
# Thin wrapper: `make run` (install deps, build, start on the embedded default) and `make test` (install deps, build,
# run every test, then again under ASan+UBSan). Everything real lives in CMakeLists.txt and tests/.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 10
SOAK_SECONDS ?= 600

.PHONY: all deps build run test test-release test-asan fuzz bench soak install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/llmgate $(ARGS)

test:
	@scripts/install-deps.sh --test
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz

test-release:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLG_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j2

test-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLG_WERROR=ON -DLG_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j2

fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DLG_FUZZ=ON -DLG_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//' | tr '\n' ' ')
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	tests/bench/run.sh

# not part of `make test`: SOAK_SECONDS of mixed traffic, fails on RSS growth > 1% after warm-up or a failed request
soak: build
	LLMGATE_BUILD_DIR=$(abspath $(BUILD)) SOAK_SECONDS=$(SOAK_SECONDS) node tests/soak/soak.mjs

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
