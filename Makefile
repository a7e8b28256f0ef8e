# dst - distributed block storage. Plain GNU make, out-of-tree objects in build/.
#
#   make            build build/dstd and build/dst (optimised)
#   make check      install test deps, build with ASan+UBSan and -Werror, run every test
#   make demo       install deps, build, run the demo
#   make bench      side-by-side benchmarks against nbdkit and qemu-nbd
#   make bench-fuse the FUSE frontend against nbdfuse, on loop devices (root)
#   make bench-relay what one extra hop costs on loopback TCP, without NBD
#   make fuzz       build the fuzz targets with clang's libFuzzer in build-fuzz/ and
#                   run each for FUZZ_SECONDS (default 60), FUZZ_JOBS at a time
#   make format / format-check
#   make install / uninstall   binaries, man pages, systemd units, bash
#                   completion under PREFIX (default /usr/local), staged
#                   under DESTDIR if given

CC      ?= gcc
PKGS    := libnbd liburing fuse3 gnutls libmicrohttpd libisal
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CSTD    := -std=gnu11 -D_GNU_SOURCE
OPT     ?= -O2 -g
SAN     ?=
BUILD   ?= build

CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(SAN) -Isrc $(PKG_CFLAGS) $(CFLAGS)

# --version: the VERSION file, and the commit when built from a git checkout.
# version.o is rebuilt only when this string changes (the stamp file).
GIT_DESCRIBE := $(shell git describe --always --dirty 2>/dev/null)
VERSION_STR  := $(shell cat VERSION)$(if $(GIT_DESCRIBE), (git $(GIT_DESCRIBE)))
LDLIBS_ALL := $(PKG_LIBS) -lpthread $(LDLIBS)

# Library code: everything but the two mains.
LIB_SRC  := $(wildcard src/common/*.c src/nbd/*.c src/dev/*.c src/array/*.c src/alg/*.c) \
            $(filter-out src/daemon/dstd.c,$(wildcard src/daemon/*.c))
CLI_SRC  := $(wildcard src/cli/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(TOOLS_SRC:tests/tools/%.c=$(BUILD)/tests/%)
# Fuzz targets: libFuzzer binaries in build-fuzz/fuzz/, and the same code
# linked into the unit test test_fuzz_replay in every other build.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(BUILD)/%.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_CC  ?= clang
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer
# Functional tests at once in make check (tests/run.sh, DST_TEST_JOBS).
TEST_JOBS    ?= 3
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1

.PHONY: all check vm-check demo bench bench-fuse bench-relay deps format format-check clean unit fuzz fuzz-targets \
	install uninstall
all: $(BUILD)/dstd $(BUILD)/dst

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION_STR)' | cmp -s - $@ || echo '$(VERSION_STR)' >$@
$(BUILD)/src/common/version.o: $(BUILD)/version.stamp
$(BUILD)/src/common/version.o: CFLAGS_ALL += -DDST_VERSION='"$(VERSION_STR)"'
FORCE:

$(BUILD)/libdst.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dstd: $(BUILD)/src/daemon/dstd.o $(BUILD)/libdst.a
	$(CC) $(CFLAGS_ALL) $^ -o $@ $(LDLIBS_ALL)

$(BUILD)/dst: $(CLI_OBJ) $(BUILD)/libdst.a
	$(CC) $(CFLAGS_ALL) $^ -o $@ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libdst.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit $< $(BUILD)/libdst.a -o $@ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libdst.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< $(BUILD)/libdst.a -o $@ $(LDLIBS_ALL)

$(BUILD)/tests/test_fuzz_replay: tests/unit/test_fuzz_replay.c $(FUZZ_OBJ) $(BUILD)/libdst.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit $< $(FUZZ_OBJ) $(BUILD)/libdst.a -o $@ $(LDLIBS_ALL)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(BUILD)/libdst.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DDST_LIBFUZZER -fsanitize=fuzzer $< $(BUILD)/libdst.a -o $@ $(LDLIBS_ALL)

unit: $(UNIT_BIN) $(TOOLS_BIN)

fuzz-targets: $(FUZZ_BIN)

deps:
	@scripts/deps.sh

# The test build lives in build-check/ so it never mixes with the optimised one.
check: deps
	$(MAKE) BUILD=build-check OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all unit
	DST_BUILD=build-check DST_TEST_JOBS=$(TEST_JOBS) tests/run.sh

# Kernel-level tests: each tests/vm/test_*.sh in a VM (tests/vm/run) with a
# real kernel, running the sanitizer build of make check.
vm-check: deps
	$(MAKE) BUILD=build-check OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	DST_BUILD=build-check tests/vm/check.sh

# pkg-config ran when this Makefile was read, maybe before deps installed the
# libraries: build in a sub-make so a fresh machine gets the right flags.
demo: deps
	$(MAKE) all
	scripts/demo.sh

bench: deps
	$(MAKE) all
	bench/run.sh

bench-fuse: deps
	$(MAKE) all
	bench/fuse.sh

bench-relay:
	BUILD=$(BUILD) bench/relay.sh

# Its own build dir again: clang, and every object instrumented for coverage.
fuzz: deps
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT="-O1 -g" SAN="$(FUZZ_SAN)" fuzz-targets
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-check build-fuzz build-vm

# Both binaries in BINDIR: dst runs the dstd next to its own binary.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALLED := $(BINDIR)/dst $(BINDIR)/dstd $(MANDIR)/man1/dst.1 $(MANDIR)/man5/dst.conf.5 \
	     $(MANDIR)/man8/dstd.8 $(UNITDIR)/dst@.service $(UNITDIR)/dst.target \
	     $(BASHCOMPDIR)/dst

install: $(BUILD)/dstd $(BUILD)/dst
	install -Dm755 $(BUILD)/dst $(DESTDIR)$(BINDIR)/dst
	install -Dm755 $(BUILD)/dstd $(DESTDIR)$(BINDIR)/dstd
	install -Dm644 docs/dst.1 $(DESTDIR)$(MANDIR)/man1/dst.1
	install -Dm644 docs/dst.conf.5 $(DESTDIR)$(MANDIR)/man5/dst.conf.5
	install -Dm644 docs/dstd.8 $(DESTDIR)$(MANDIR)/man8/dstd.8
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/dst@.service.in >$(DESTDIR)$(UNITDIR)/dst@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/dst@.service
	install -Dm644 dist/systemd/dst.target $(DESTDIR)$(UNITDIR)/dst.target
	install -Dm644 dist/bash-completion/dst $(DESTDIR)$(BASHCOMPDIR)/dst

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
