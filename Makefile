# The two commands that matter: `make run` and `make test`. Both install missing Debian packages
# first (scripts/deps.sh), so on a fresh Debian 12 machine, as root, they are the whole setup.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= etc/agent.toml
MAKEFLAGS  += --no-print-directory
# ccache hashes paths relative to the checkout, so build/, build-asan/ and build-package/ share hits.
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps build run test unit-test asan-test fuzz bench install package package-test clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DAGENT_BUILD_TESTS=ON -DAGENT_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@bash scripts/run.sh $(BUILD) $(CONFIG)

# Every test of the Release build, then the unit tests again under ASan + UBSan, then a short
# fuzzing run of every parser that reads outside input, then the packages installed on a clean root.
test: build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600
	$(MAKE) asan-test
	$(MAKE) fuzz FUZZ_SECONDS=20
	$(MAKE) package-test

asan-test: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAGENT_SANITIZE=ON -DAGENT_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) --target unit_tests
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./unit_tests

FUZZ_SECONDS ?= 20
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	@bash bench/run.sh $(BUILD)

install: build
	cmake --install $(BUILD)

# The .deb packages, the self-contained tarball and the compatibility report (build-package/package/).
PACKAGE_BUILD ?= build-package
package: deps
	@bash scripts/package.sh $(PACKAGE_BUILD)

# Installs both on a minimal Debian root made with debootstrap (cached in $(PACKAGE_BUILD)/).
package-test: package
	@bash scripts/package-test.sh $(PACKAGE_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz $(PACKAGE_BUILD)
