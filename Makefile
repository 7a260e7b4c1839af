# Tollgate build. `make` builds ./tollgate, the sanitizer build the tests
# run under, and the provider simulator. `make check` and `make demo` are
# the two commands the README promises.

CC      ?= gcc
PKGS    := libevent libcurl libfyaml json-c sqlite3 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS)
REL_FLAGS   := -O2 -g
ASAN_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
REL_OBJS  := $(SRCS:%.c=build/rel/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:%.c=build/asan/%.o)

SIM_SRCS  := $(shell find tools/provider-sim -name '*.c' 2>/dev/null | sort)
SIM_OBJS  := $(SIM_SRCS:%.c=build/rel/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)

.PHONY: all setup check demo unit e2e lint format clean bench bench-ledger

all: tollgate build/asan/tollgate tools/provider-sim/provider-sim $(UNIT_BINS)

setup:
	@scripts/setup.sh

tollgate: $(REL_OBJS)
	$(CC) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

build/asan/tollgate: $(ASAN_OBJS)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(PKG_LIBS)

tools/provider-sim/provider-sim: $(SIM_OBJS)
	$(CC) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Itools/provider-sim $(REL_FLAGS) -MMD -MP -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(ASAN_FLAGS) -MMD -MP -c $< -o $@

build/tests/%: tests/unit/%.c $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Itests/unit $(ASAN_FLAGS) -o $@ $^ \
	    $(PKG_LIBS) -lcmocka

lint:
	@scripts/lint.sh

unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

e2e: all
	@python3 tests/e2e/run.py

check: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory lint
	@scripts/check.sh $(UNIT_BINS)

demo: setup
	@$(MAKE) --no-print-directory tollgate tools/provider-sim/provider-sim
	@scripts/demo.sh

bench: tollgate tools/provider-sim/provider-sim
	@bench/proxy/run.sh

build/bench/ledger_bench: bench/ledger/ledger_bench.c $(filter-out build/rel/src/main.o,$(REL_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

bench-ledger: build/bench/ledger_bench
	@build/bench/ledger_bench

format:
	clang-format -i $(SRCS) $(shell find src -name '*.h')

clean:
	rm -rf build tollgate tools/provider-sim/provider-sim

-include $(shell find build -name '*.d' 2>/dev/null)

.PHONY: bench-tokens

build/bench/tokens_bench: bench/tokens/tokens_bench.c \
    $(filter build/rel/src/tokens/%,$(REL_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

bench-tokens: build/bench/tokens_bench
	@bench/tokens/run.sh

.PHONY: bench-audit bench-replay

bench-audit: tollgate
	@bench/audit/run.sh

bench-replay: tollgate
	@bench/replay/run.sh

.PHONY: bench-context

build/bench/context_bench: bench/context/context_bench.c \
    $(filter-out build/rel/src/main.o,$(REL_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

bench-context: build/bench/context_bench
	@build/bench/context_bench

.PHONY: dashboard bench-report

# The dashboard's front end: uPlot from npm plus web/, into build/dashboard/
# (never committed). The gateway and `report --format html` read it there.
dashboard:
	@scripts/build-dashboard.sh

build/bench/report_gen: bench/report/gen.c \
    $(filter-out build/rel/src/main.o,$(REL_OBJS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -o $@ $^ $(PKG_LIBS)

bench-report: tollgate build/bench/report_gen
	@bench/report/run.sh

.PHONY: bench-routing

# GSM8K through the gateway: cheap-first cascade, always-strong and
# always-cheap side by side, on the simulator's replay of RouteLLM.
bench-routing: tollgate tools/provider-sim/provider-sim
	@python3 bench/routing/run.py
