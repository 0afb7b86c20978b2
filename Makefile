# The two set-up commands: `make demo` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
JOBS ?= $(shell nproc)
CTEST_JOBS ?= 2
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60
# Per fuzz target in `make test` (10 targets + the clang build: about 4 minutes).
TEST_FUZZ_SECONDS ?= 10

.PHONY: all deps build build-asan demo test test-fast test-sanitize test-fuzz bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DVTUNNEL_BUILD_BENCH=OFF \
	  -DVTUNNEL_SANITIZE=address,undefined $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)

# Whole suite in the release build, then again under ASan+UBSan, then each fuzzer briefly.
test: test-fast test-sanitize test-fuzz

test-fast: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(CTEST_JOBS)

test-sanitize: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(CTEST_JOBS)

# libFuzzer targets (clang, ASan+UBSan), each run FUZZ_SECONDS over its seed corpus; prints a
# table of executions, exec/s, coverage and result (scripts/fuzz.sh).
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_DIR)

test-fuzz: deps
	FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_DIR)

demo: build
	bash scripts/demo.sh $(BUILD_DIR)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
