# spinlm: make demo | make test | make bench | make build
# Each target installs the Debian packages it needs (scripts/install-deps.sh, idempotent).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build test demo bench clean

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

clean:
	rm -rf $(BUILD_DIR)
