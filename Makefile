# spinlm: make demo | make test | make bench | make build | make fuzz | make test-asan
# Each target installs the Debian packages it needs (scripts/install-deps.sh, idempotent).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build test demo bench clean fuzz fuzz-build test-asan

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/CMakeCache.txt ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS); \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	bash scripts/fetch-test-assets.sh
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	$(BUILD_DIR)/spinlm demo

bench: build
	bash bench/run.sh

# libFuzzer targets (fuzz/): clang, a build folder of their own; each runs FUZZ_SECONDS.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 120
FUZZ_CXX ?= $(shell command -v clang++-14 || command -v clang++)

fuzz-build: deps
	@if [ ! -f $(FUZZ_BUILD_DIR)/CMakeCache.txt ]; then \
	  cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	    -DSPINLM_FUZZ=ON -DSPINLM_BUILD_TESTS=OFF; \
	fi
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target spinlm_fuzz_all

fuzz: fuzz-build
	FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

# The fast part of the suite (ctest label "fast", CMakeLists.txt) built with AddressSanitizer
# and UndefinedBehaviorSanitizer in a build folder of its own. libtorch is not instrumented;
# the leaks of the libraries it loads are suppressed (tests/sanitizers/lsan.supp). vptr is off:
# it would check calls into libtorch's classes, whose type information lives in the
# uninstrumented library. The stack is raised to 64 MiB: instrumented frames are several
# times larger, and the renderer's depth limit (kMaxRenderDepth) is sized for about 2 MB of
# the ordinary build's stack.
ASAN_BUILD_DIR ?= build-asan
# Left out: builds strings at the 32 MiB limits dozens of times, which takes over 15 minutes
# under AddressSanitizer (about 10 s in the ordinary build).
ASAN_EXCLUDE ?= HardeningTemplates.SizesATemplateAsksForAreChecked
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0:check_initialization_order=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

test-asan: deps
	@if [ ! -f $(ASAN_BUILD_DIR)/CMakeCache.txt ]; then \
	  cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS="$(ASAN_FLAGS)" \
	    -DCMAKE_EXE_LINKER_FLAGS="$(ASAN_FLAGS)" -DCMAKE_SHARED_LINKER_FLAGS="$(ASAN_FLAGS)"; \
	fi
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS) --target spinlm spinlm_write_fault spinlm_fast_tests
	bash scripts/fetch-test-assets.sh
	cd $(ASAN_BUILD_DIR) && ulimit -s 65536 && $(ASAN_ENV) ctest -L fast -E '$(ASAN_EXCLUDE)' \
	  --output-on-failure -j $(JOBS) --timeout 1800

clean:
	rm -rf $(BUILD_DIR)
