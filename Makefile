# The README's two commands: `make run` and `make test`. Everything else
# here is a step of those two.
BUILD      ?= build
TEST_BUILD ?= build-test
GUEST_DIR  ?= $(or $(KUMO_GUEST_DIR),/var/cache/kumo/guest)
export KUMO_GUEST_DIR := $(GUEST_DIR)

.PHONY: all deps build build-test guest run test unit fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dtests=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) -Db_sanitize=address,undefined -Db_lundef=false

build-test: deps $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)

guest: deps
	guest/build.sh

run: build guest
	$(BUILD)/kumo run $(ARGS)

test: build-test guest
	tests/run.sh $(TEST_BUILD)

fuzz: deps
	tests/fuzz/run-libfuzzer.sh $(or $(SECONDS),30)

bench: build
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
