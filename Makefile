# SPDX-License-Identifier: Apache-2.0
# berth - one Makefile for everything (README.md shows `make demo` and `make check` first).
# make            build into build/ (SAN=1: build-san/ with ASan+UBSan)
# make check      install missing Debian build deps (as root), unit tests, system tests, then
#                 the packages (check-packages: lint, install/upgrade/purge in a Debian root)
# make check-unit / check-system / check-vm / check-packages / demo / bench / install / deb / rpm /
#      format / check-deps

SAN ?= 0
FUZZ ?= 0
CC ?= gcc
ifeq ($(FUZZ),1)
# libFuzzer builds (tests/fuzz): clang, every library instrumented for coverage and sanitized
B ?= build-fuzz
CC = clang
SANFLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
else ifeq ($(SAN),1)
B ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
B ?= build
SANFLAGS =
endif

PREFIX ?= /usr
DESTDIR ?=
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
       -Werror=implicit-function-declaration
CFLAGS ?= -O2 -g
CPPFLAGS += -std=gnu11 -D_GNU_SOURCE -I. -DBERTH_VERSION='"$(VERSION)"' -MMD -MP
ALL_CFLAGS = $(CPPFLAGS) $(CFLAGS) -fPIE $(WARN) $(SANFLAGS)
LDFLAGS += $(SANFLAGS) -Wl,--as-needed

PKGS_ISO = libcgroup libseccomp libcap yajl
LIBS_COMMON = $(shell pkg-config --libs yajl 2>/dev/null)
LIBS_CONFIG = $(shell pkg-config --libs inih 2>/dev/null)
LIBS_ISO = $(shell pkg-config --libs $(PKGS_ISO) 2>/dev/null)
LIBS_ML = $(shell pkg-config --libs libcrypto 2>/dev/null)
# the agent's networking (isolator/net-*.c, issue #15): libnl-route, libnl-idiag, libnftables
PKGS_NET = libnl-3.0 libnl-route-3.0 libnl-idiag-3.0 libnftables
CPPFLAGS += $(shell pkg-config --cflags-only-I libnl-3.0 2>/dev/null)
LIBS_NET = $(shell pkg-config --libs $(PKGS_NET) 2>/dev/null)
LIBS_AGENT = $(shell pkg-config --libs libevent sqlite3 libcurl 2>/dev/null) $(LIBS_ML) $(LIBS_NET)
# berthctl (issue #18): libevent's HTTP client and yajl come from their static archives
# (libevent-dev's libevent_core.a/libevent_extra.a, libyajl-dev's libyajl_s.a; Debian builds
# them position-independent, so they go into a PIE), so a call on the agent's socket maps
# libc alone. libcurl is dlopen'ed for --master only (cli/http-curl.c needs just its header).
# The --wrap is how cli/http-local.c puts evhttp on a unix socket; it needs libevent static.
LIBS_CLI = -Wl,--wrap=bufferevent_socket_connect_hostname \
           -Wl,-Bstatic -levent_extra -levent_core -lyajl_s -Wl,-Bdynamic
LIBS_MASTER = $(shell pkg-config --libs libevent libevent_openssl libssl sqlite3 yajl 2>/dev/null) \
              $(LIBS_ML)
LIBS_SCHED = $(shell pkg-config --libs libevent libcurl yajl 2>/dev/null) $(LIBS_ML)
LIBS_CMOCKA = $(shell pkg-config --libs cmocka 2>/dev/null)
# berth-executor runs once per task: a static PIE (issue #18), so no shared objects are
# mapped and relocated for each task (Pss, start-up); it makes no NSS lookups (the agent
# resolves users), which is what static glibc cannot do. Sanitizer builds link dynamically.
ifeq ($(SANFLAGS),)
EXEC_LDFLAGS = -static-pie
LIBS_EXEC = -lcap -l:libyajl_s.a
else
EXEC_LDFLAGS =
LIBS_EXEC = $(LIBS_ISO) $(LIBS_COMMON)
endif

COMMON_SRC = $(wildcard common/*.c)
CONFIG_SRC = $(wildcard config/*.c)
ISO_SRC = $(wildcard isolator/*.c)
ML_SRC = $(wildcard masterlink/*.c)
EXEC_SRC = $(wildcard executor/*.c)
AGENT_SRC = $(wildcard agentd/*.c)
CLI_SRC = $(wildcard cli/*.c)
MASTER_SRC = $(wildcard master/*.c)
SCHED_SRC = $(wildcard sched/*.c)
SSE_SRC = $(wildcard sse/*.c)
# libcurl's multi interface in a libevent loop: the agent's master link, libberthsched, berth-lb
EVCURL_OBJ = $(B)/obj/evcurl/evcurl.o
UNIT_SRC = $(wildcard tests/unit/*_test.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
LIBCOMMON = $(B)/libcommon.a
LIBCONFIG = $(B)/libconfig.a
LIBISO = $(B)/libisolator.a
LIBML = $(B)/libmasterlink.a
LIBSCHED = $(B)/libberthsched.a
LIBSSE = $(B)/libsse.a

BINS = $(B)/berth-agent $(B)/berth-executor $(B)/berthctl $(B)/berth-master \
       $(B)/berth-seed-framework $(B)/berth-apps $(B)/berth-lb
UNIT_BINS = $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
HELPERS = $(B)/tests/probe

# Debian packages needed to build, test and demo (installed by `make deps` as root).
DEB_BUILD = gcc make pkg-config libcgroup-dev libseccomp-dev libcap-dev libnl-3-dev \
            libnl-route-3-dev libnl-idiag-3-dev libnftables-dev nftables libyajl-dev \
            libevent-dev libcurl4-openssl-dev libsqlite3-dev libinih-dev libcmocka-dev libssl-dev \
            openssl python3-pytest busybox-static util-linux procps iproute2 prometheus tmux haproxy
DEB_BENCH = crun hyperfine linux-perf

.PHONY: install-agent install-master install-apps install-lb all deps check check-unit check-system check-vm demo bench install clean format format-check \
        check-deps asan analyze clean-analyze deb rpm check-packages fuzz fuzz-build fuzz-bins check-fuzz

all: $(BINS) $(HELPERS)

# keep objects of the unit tests (pattern-rule intermediates) for incremental builds
.SECONDARY:

deps:
	@bash tests/install-deps.sh $(DEB_BUILD)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBCONFIG): $(call obj,$(CONFIG_SRC))
$(LIBISO): $(call obj,$(ISO_SRC))
$(LIBML): $(call obj,$(ML_SRC))
$(LIBSCHED): $(call obj,$(SCHED_SRC)) $(EVCURL_OBJ)
$(LIBSSE): $(call obj,$(SSE_SRC))
$(B)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/berth-agent: $(call obj,$(AGENT_SRC)) $(EVCURL_OBJ) $(LIBCONFIG) $(LIBISO) $(LIBML) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_AGENT) $(LIBS_CONFIG) $(LIBS_ISO) $(LIBS_COMMON)

# The task's seccomp filter is compiled to BPF when berth is built: isolator/gen/seccomp-bpf.c
# prints it as a header that isolator/seccomp-prog.c embeds (the executor links no libseccomp).
$(B)/gen/isolator/seccomp-bpf.h: $(B)/gen/seccomp-bpf
	$(B)/gen/seccomp-bpf > $@.tmp && mv $@.tmp $@
$(B)/gen/seccomp-bpf: $(call obj,isolator/gen/seccomp-bpf.c isolator/seccomp.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)/isolator
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_ISO) $(LIBS_COMMON)
$(B)/obj/isolator/seccomp-prog.o: $(B)/gen/isolator/seccomp-bpf.h
$(B)/obj/isolator/seccomp-prog.o: ALL_CFLAGS += -I$(B)/gen

$(B)/berth-executor: $(call obj,$(EXEC_SRC)) $(LIBISO) $(LIBCOMMON)
	$(CC) $(LDFLAGS) $(EXEC_LDFLAGS) -o $@ $^ $(LIBS_EXEC)

$(B)/berthctl: $(call obj,$(CLI_SRC)) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CLI)

# berth-master (issue #7): libevent, SQLite, yajl (masterlink), inih (master.conf)
# and the Server-Sent Events hub (sse/, issue #17) behind GET /v1/events
$(B)/berth-master: $(call obj,$(MASTER_SRC)) $(LIBSSE) $(LIBCONFIG) $(LIBML) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_MASTER) $(LIBS_CONFIG) $(LIBS_COMMON)

# the scheduler library (sched/, issue #14) and the example framework built with it; the
# example is built, not packaged (SPEC §2): it replays the seed, it serves no one
$(B)/berth-seed-framework: $(call obj,examples/seed-framework.c) $(LIBSCHED) $(LIBML) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_SCHED) $(LIBS_COMMON)

# berth-apps (issue #16): a framework on libberthsched; its pure decisions (model.c, plan.c,
# constraints.c) are also linked alone by its unit test
APPS_SRC = $(wildcard apps/*.c)
APPS_PURE = $(call obj,apps/model.c apps/plan.c apps/constraints.c)
LIBS_APPS = $(shell pkg-config --libs libevent libevent_openssl libssl libcurl sqlite3 yajl \
              2>/dev/null) $(LIBS_ML) -lm
$(B)/berth-apps: $(call obj,$(APPS_SRC)) $(LIBSSE) $(LIBCONFIG) $(LIBSCHED) $(LIBML) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_APPS) $(LIBS_CONFIG) $(LIBS_COMMON)
$(B)/tests/apps_test: $(B)/obj/tests/unit/apps_test.o $(APPS_PURE) $(LIBML) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_ML) $(LIBS_COMMON) -lm

# berth-lb (issue #17): follows berth-apps' events and drives HAProxy; its pure parts (table,
# slots, render, SSE parser) are also linked alone by its unit test
LB_SRC = $(wildcard lb/*.c)
LB_PURE = $(call obj,lb/table.c lb/slots.c lb/render.c lb/sseparse.c)
LIBS_LB = $(shell pkg-config --libs libevent libcurl yajl 2>/dev/null)
$(B)/berth-lb: $(call obj,$(LB_SRC)) $(EVCURL_OBJ) $(LIBCONFIG) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_LB) $(LIBS_CONFIG) $(LIBS_COMMON)
$(B)/tests/lb_test: $(B)/obj/tests/unit/lb_test.o $(LB_PURE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_COMMON)
install-lb: $(B)/berth-lb $(B)/lb.conf $(B)/man/berth-lb.conf.5
	install -D -m 0755 $(B)/berth-lb $(DESTDIR)$(PREFIX)/sbin/berth-lb
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/berth
	sed 's|/usr/sbin/berth-lb|$(PREFIX)/sbin/berth-lb|' packaging/berth-lb.service \
	        > $(DESTDIR)$(UNITDIR)/berth-lb.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/berth-lb.service
	@# never overwrite an operator's config (packages handle theirs as a conffile)
	test -e $(DESTDIR)$(SYSCONFDIR)/berth/lb.conf || \
	        install -m 0644 $(B)/lb.conf $(DESTDIR)$(SYSCONFDIR)/berth/lb.conf
	install -D -m 0644 packaging/man/berth-lb.8 $(DESTDIR)$(MANDIR)/man8/berth-lb.8
	install -D -m 0644 $(B)/man/berth-lb.conf.5 $(DESTDIR)$(MANDIR)/man5/berth-lb.conf.5
$(B)/lb.conf: $(B)/berth-lb packaging/gen-conf.sh
	sh packaging/gen-conf.sh $(B)/berth-lb > $@.tmp && mv $@.tmp $@
$(B)/man/berth-lb.conf.5: packaging/man/berth-lb.conf.5.in docs/config.md \
                          packaging/man/config-keys.py
	@mkdir -p $(dir $@)
	python3 packaging/man/config-keys.py packaging/man/berth-lb.conf.5.in docs/config.md \
	        $(VERSION) '## berth-lb' > $@.tmp && mv $@.tmp $@

# Unit tests link the module under test (all libraries are available; the linker takes
# only what is referenced).
$(B)/tests/%_test: $(B)/obj/tests/unit/%_test.o $(LIBCONFIG) $(LIBISO) $(LIBML) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_CONFIG) $(LIBS_ISO) $(LIBS_ML) $(LIBS_COMMON)
# master is no library: master_test and allocator_test link the one pure file each tests
$(B)/tests/master_test: $(call obj,master/placement.c)
# berth-apps' constraints (apps/constraints.c, issue #16) are pure: their test links them alone
$(B)/tests/apps_constraints_test: $(call obj,apps/constraints.c)
$(B)/tests/allocator_test: $(B)/obj/tests/unit/allocator_test.o $(call obj,master/allocator.c) \
                           $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_COMMON)

# the scheduler library's promise to its caller (an ACCEPT answered once), offline
$(B)/tests/sched_test: $(B)/obj/tests/unit/sched_test.o $(LIBSCHED) $(LIBML) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_SCHED) $(LIBS_COMMON)

# the SSE hub's pure half (sse/event.c: formatting, ids, history, resume) needs no libevent
$(B)/tests/sse_test: $(B)/obj/tests/unit/sse_test.o $(call obj,sse/event.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_COMMON)

# agentd is no library: the unit test of its pure decisions links those of its files alone
UNIT_AGENTD = $(call obj,agentd/decide.c agentd/resources.c agentd/ports.c agentd/ipam.c \
                       agentd/net-files.c)
$(B)/tests/agentd_test $(B)/tests/net_test: $(B)/tests/%_test: $(B)/obj/tests/unit/%_test.o \
                        $(UNIT_AGENTD) $(LIBCONFIG) $(LIBISO) $(LIBML) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CMOCKA) $(LIBS_CONFIG) $(LIBS_ISO) $(LIBS_ML) $(LIBS_NET) \
	        $(LIBS_COMMON)

# libFuzzer targets (make fuzz; tests/fuzz/README.md): one binary per tests/fuzz/fuzz_*.c,
# linked with the instrumented libraries of a FUZZ=1 build.
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS = $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
# agentd is no library: the few of its files a target feeds (pure parsers) are linked as such
FUZZ_AGENTD = $(call obj,agentd/path.c)
$(B)/fuzz/%: $(B)/obj/tests/fuzz/%.o $(FUZZ_AGENTD) $(LIBCONFIG) $(LIBISO) $(LIBML) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS_CONFIG) $(LIBS_ISO) $(LIBS_ML) $(LIBS_COMMON)

fuzz-build:
	$(MAKE) FUZZ=1 fuzz-bins

fuzz-bins: $(FUZZ_BINS)

# make fuzz [FUZZ_SECONDS=3600] [FUZZ_TARGETS="fuzz_codec ..."]: long runs, corpus kept in
# build-fuzz/corpus; .ci/run runs every target briefly (check-fuzz).
FUZZ_SECONDS ?= 600
fuzz: deps
	@bash tests/install-deps.sh clang libclang-rt-14-dev
	$(MAKE) fuzz-build
	bash tests/fuzz/run.sh $(abspath build-fuzz) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

check-fuzz: deps
	@bash tests/install-deps.sh clang libclang-rt-14-dev
	$(MAKE) fuzz-build
	bash tests/fuzz/run.sh --ci $(abspath build-fuzz) $${BERTH_FUZZ_CI_SECONDS:-15}

# The probe is a task, not part of berth: static and unsanitised so it runs in any sandbox.
$(B)/tests/probe: tests/helpers/probe.c tests/helpers/probe-watch.c tests/helpers/probe.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -I. -O2 -Wall -Wextra -Werror -Wmissing-prototypes -static \
		-pthread -o $@ $(filter %.c,$^)

# The VM suite (qemu under TCG, ~16 min) runs at the same time as the host's system tests
# (~12 min) and then the packages' and the fuzzers' checks (~4 min): they share nothing but
# the binaries (the packages build in $(B)/pkg, the fuzzers in build-fuzz), and one after the
# other they took over 30 minutes. The VM's output is printed when all have ended; any
# failing fails the check (the packages and fuzzers run only after the system tests passed).
check: deps
	$(MAKE) all
	$(MAKE) check-unit
	@# what check-packages and check-fuzz install, before the VM shares the host's /usr
	@bash tests/install-deps.sh $(DEB_PKG_TOOLS) clang libclang-rt-14-dev
	@bash tests/vm/check.sh --if-possible $(abspath $(B)) >$(B)/check-vm.log 2>&1 & vm=$$!; \
	$(MAKE) check-system; sys=$$?; pkg=1; fz=1; \
	if [ $$sys = 0 ]; then $(MAKE) check-packages; pkg=$$?; $(MAKE) check-fuzz; fz=$$?; fi; \
	wait $$vm; v=$$?; \
	echo "== check-vm (ran alongside check-system, check-packages, check-fuzz): exit $$v"; \
	cat $(B)/check-vm.log; \
	[ $$sys = 0 ] && [ $$pkg = 0 ] && [ $$fz = 0 ] && [ $$v = 0 ]

check-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

check-system: all
	BERTH_BUILD=$(abspath $(B)) /usr/bin/python3 -m pytest -v -x --durations=10 tests/system $(PYTEST_ARGS)

# The system tests again inside a throw-away qemu VM (TCG), on a pure cgroup2 kernel and on
# cgroup v1 (tests/vm/README.md). `make check` runs it when qemu can be installed.
check-vm: all
	bash tests/vm/check.sh $(abspath $(B))

demo: deps
	$(MAKE) all
	bash tests/demo.sh $(abspath $(B))

bench: deps
	@bash tests/install-deps.sh $(DEB_BENCH)
	$(MAKE) all
	bash tests/bench/run.sh $(abspath $(B))

asan:
	$(MAKE) SAN=1 all

# clang's static analyzer (Debian's clang-tools) over a fresh build in build-analyze/; fails
# on any finding (--status-bugs), its HTML reports in build-analyze/scan/.
analyze: deps
	@bash tests/install-deps.sh clang-tools
	$(MAKE) clean-analyze
	scan-build --status-bugs -o build-analyze/scan $(MAKE) B=build-analyze all

clean-analyze:
	rm -rf build-analyze

# install = all three; each package stages its own part (install-agent, install-master,
# install-apps)
install: install-agent install-master install-apps install-lb

install-apps: $(B)/berth-apps $(B)/apps.conf $(B)/man/berth-apps.conf.5
	install -D -m 0755 $(B)/berth-apps $(DESTDIR)$(PREFIX)/sbin/berth-apps
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/berth
	sed 's|/usr/sbin/berth-apps|$(PREFIX)/sbin/berth-apps|' packaging/berth-apps.service \
	        > $(DESTDIR)$(UNITDIR)/berth-apps.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/berth-apps.service
	@# never overwrite an operator's config (packages handle theirs as a conffile); the
	@# state dir (/var/lib/berth-apps) is the unit's StateDirectory=, made at start
	test -e $(DESTDIR)$(SYSCONFDIR)/berth/apps.conf || \
	        install -m 0644 $(B)/apps.conf $(DESTDIR)$(SYSCONFDIR)/berth/apps.conf
	install -D -m 0644 packaging/man/berth-apps.8 $(DESTDIR)$(MANDIR)/man8/berth-apps.8
	install -D -m 0644 $(B)/man/berth-apps.conf.5 $(DESTDIR)$(MANDIR)/man5/berth-apps.conf.5
	@# the API token of a fresh install (the packages' postinst runs berth-apps-init)
	install -D -m 0755 packaging/berth-apps-init $(DESTDIR)$(PREFIX)/libexec/berth/berth-apps-init

install-master: $(B)/berth-master $(B)/master.conf $(B)/man/berth-master.conf.5
	install -D -m 0755 $(B)/berth-master $(DESTDIR)$(PREFIX)/sbin/berth-master
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/berth
	sed 's|/usr/sbin/berth-master|$(PREFIX)/sbin/berth-master|' packaging/berth-master.service \
	        > $(DESTDIR)$(UNITDIR)/berth-master.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/berth-master.service
	@# never overwrite an operator's config (packages handle theirs as a conffile); the
	@# state dir (/var/lib/berth-master) is the unit's StateDirectory=, made at start
	test -e $(DESTDIR)$(SYSCONFDIR)/berth/master.conf || \
	        install -m 0644 $(B)/master.conf $(DESTDIR)$(SYSCONFDIR)/berth/master.conf
	install -D -m 0644 packaging/man/berth-master.8 $(DESTDIR)$(MANDIR)/man8/berth-master.8
	install -D -m 0644 $(B)/man/berth-master.conf.5 $(DESTDIR)$(MANDIR)/man5/berth-master.conf.5
	@# TLS and tokens of a fresh install (the packages' postinst runs berth-master-init)
	install -D -m 0755 packaging/berth-gen-tls $(DESTDIR)$(PREFIX)/sbin/berth-gen-tls
	install -D -m 0644 packaging/man/berth-gen-tls.8 $(DESTDIR)$(MANDIR)/man8/berth-gen-tls.8
	install -D -m 0755 packaging/berth-master-init $(DESTDIR)$(PREFIX)/libexec/berth/berth-master-init

install-agent: $(B)/berth-agent $(B)/berth-executor $(B)/berthctl $(B)/agent.conf \
               $(B)/man/berth-agent.conf.5
	install -D -m 0755 $(B)/berth-agent $(DESTDIR)$(PREFIX)/sbin/berth-agent
	install -D -m 0755 $(B)/berth-executor $(DESTDIR)$(PREFIX)/libexec/berth/berth-executor
	install -D -m 0755 $(B)/berthctl $(DESTDIR)$(PREFIX)/bin/berthctl
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/berth/agent.conf.d \
	        $(DESTDIR)$(LOCALSTATEDIR)/lib/berth
	sed 's|/usr/sbin/berth-agent|$(PREFIX)/sbin/berth-agent|' packaging/berth-agent.service \
	        > $(DESTDIR)$(UNITDIR)/berth-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/berth-agent.service
	@# never overwrite an operator's config (packages handle theirs as a conffile)
	test -e $(DESTDIR)$(SYSCONFDIR)/berth/agent.conf || \
	        install -m 0644 $(B)/agent.conf $(DESTDIR)$(SYSCONFDIR)/berth/agent.conf
	install -D -m 0644 packaging/man/berthctl.1 $(DESTDIR)$(MANDIR)/man1/berthctl.1
	install -D -m 0644 $(B)/man/berth-agent.conf.5 $(DESTDIR)$(MANDIR)/man5/berth-agent.conf.5
	install -D -m 0644 packaging/man/berth-agent.8 $(DESTDIR)$(MANDIR)/man8/berth-agent.8
	install -D -m 0644 packaging/completion/berthctl \
	        $(DESTDIR)$(PREFIX)/share/bash-completion/completions/berthctl

# ---- packages (issues #8, #19, packaging/README.md): `make deb`, `make rpm` write
# $(B)/pkg/*.deb and *.rpm (berth-agent, berth-master and berth-apps) from binaries built with the distribution's hardening flags
# (packaging/build-tree.sh); `make check-packages` lints them and installs, upgrades and
# purges the .debs in a fresh Debian 12 root (tests/packages/run.sh, about 2 minutes).
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
UNITDIR ?= /lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
PKG_B = $(B)/pkg
DEB_PKG_TOOLS = dpkg-dev rpm lintian rpmlint gpg gpg-agent mmdebstrap man-db bash-completion systemd

# the conffiles: each daemon's annotated defaults, every key commented out
$(B)/agent.conf: $(B)/berth-agent packaging/gen-conf.sh
	sh packaging/gen-conf.sh $(B)/berth-agent > $@.tmp && mv $@.tmp $@
$(B)/master.conf: $(B)/berth-master packaging/gen-conf.sh
	sh packaging/gen-conf.sh $(B)/berth-master > $@.tmp && mv $@.tmp $@
$(B)/apps.conf: $(B)/berth-apps packaging/gen-conf.sh
	sh packaging/gen-conf.sh $(B)/berth-apps > $@.tmp && mv $@.tmp $@

# berth-agent.conf(5), berth-master.conf(5) and berth-apps.conf(5): their key lists are
# generated from docs/config.md's tables
$(B)/man/berth-agent.conf.5: packaging/man/berth-agent.conf.5.in docs/config.md \
                             packaging/man/config-keys.py
	@mkdir -p $(dir $@)
	python3 packaging/man/config-keys.py packaging/man/berth-agent.conf.5.in docs/config.md \
	        $(VERSION) > $@.tmp && mv $@.tmp $@
$(B)/man/berth-master.conf.5: packaging/man/berth-master.conf.5.in docs/config.md \
                              packaging/man/config-keys.py
	@mkdir -p $(dir $@)
	python3 packaging/man/config-keys.py packaging/man/berth-master.conf.5.in docs/config.md \
	        $(VERSION) '## berth-master' > $@.tmp && mv $@.tmp $@
$(B)/man/berth-apps.conf.5: packaging/man/berth-apps.conf.5.in docs/config.md \
                            packaging/man/config-keys.py
	@mkdir -p $(dir $@)
	python3 packaging/man/config-keys.py packaging/man/berth-apps.conf.5.in docs/config.md \
	        $(VERSION) '## berth-apps' > $@.tmp && mv $@.tmp $@

deb: deps
	@bash tests/install-deps.sh dpkg-dev
	bash packaging/deb/build.sh $(abspath $(PKG_B)) $(VERSION)

rpm: deps
	@bash tests/install-deps.sh rpm
	bash packaging/rpm/build.sh $(abspath $(PKG_B)) $(VERSION)

check-packages: deps
	@bash tests/install-deps.sh $(DEB_PKG_TOOLS)
	bash tests/packages/run.sh $(abspath $(PKG_B)) $(VERSION)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bash tests/install-deps.sh clang-format
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

check-deps:
	@bash tests/check-deps.sh

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
