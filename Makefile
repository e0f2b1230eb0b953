# Posthorn top-level targets. `make run` and `make test` work on a fresh Debian 12 machine as
# root: they install what is missing (scripts/setup.sh), build, and run.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 30
LISTEN     ?= 127.0.0.1:2525

.PHONY: all setup build run test test-unit test-asan fuzz bench clean

all: build

setup:
	./scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/posthorn sink --listen $(LISTEN)

# The whole suite: normal build, then again under ASan+UBSan, then the fuzzers briefly.
test: test-unit test-asan fuzz

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan: setup
	CC=clang cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DPOSTHORN_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

fuzz: setup
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOSTHORN_FUZZ=ON \
	  -DPOSTHORN_TESTS=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	cmake --build $(BUILD_FUZZ) -j$(JOBS) --target fuzzers
	./tests/fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: build
	./bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
