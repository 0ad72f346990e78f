# The two commands that matter: `make run` and `make test`. Both install missing Debian packages
# first (scripts/deps.sh), so on a fresh Debian 12 or 13 machine, as root, they are the whole setup.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= etc/agent.toml
MAKEFLAGS  += --no-print-directory
# ccache hashes paths relative to the checkout, so build/, build-asan/ and build-package/ share hits.
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps configure build run test unit-test asan-test fuzz bench install package package-test \
	release-test clean

all: build

deps:
	@bash scripts/deps.sh

# One configuration of $(BUILD) for `make build`, `make run` and `make test`, so each reuses
# what the others compiled.
configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DAGENT_BUILD_TESTS=ON -DAGENT_BUILD_BENCH=ON >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# Only what it runs: the agent and every module (the CMake target agent-runtime), no tests.
run: configure
	@cmake --build $(BUILD) -j$(JOBS) --target agent-runtime
	@bash scripts/run.sh $(BUILD) $(CONFIG)

# Every test of the Release build, then the unit tests again under ASan + UBSan, then a short
# fuzzing run of every parser that reads outside input, then the packages installed on a clean
# root, then the whole build, tests and packages on the other supported Debian release.
test: build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600
	$(MAKE) asan-test
	$(MAKE) fuzz FUZZ_SECONDS=20
	$(MAKE) package-test
	$(MAKE) release-test

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

# Debian 12 (bookworm) and 13 (trixie) are supported: this tests the one this machine does not run,
# in a debootstrap root (cached in $(RELEASE_BUILD)/<release>/).
HOST_RELEASE  := $(shell . /etc/os-release 2>/dev/null && echo $$VERSION_CODENAME)
OTHER_RELEASE ?= $(if $(filter trixie,$(HOST_RELEASE)),bookworm,trixie)
RELEASE_BUILD ?= build-release
release-test: deps
	@bash scripts/release-test.sh $(OTHER_RELEASE) $(RELEASE_BUILD)

# The test roots bind-mount /dev and others: never delete through a mount a killed test left.
clean:
	@! grep -qE " $(CURDIR)/($(PACKAGE_BUILD)|$(RELEASE_BUILD))/" /proc/mounts || \
	  { echo "mounts under $(PACKAGE_BUILD)/ or $(RELEASE_BUILD)/ remain (see /proc/mounts); not deleting" >&2; exit 1; }
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz $(PACKAGE_BUILD) $(RELEASE_BUILD)
