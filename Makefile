# sfnd - a local AWS Step Functions engine. Plain make + pkg-config (STYLE.md).
#   make            build/sfn, build/sfnd and build/libsfn.a
#   make run        build, then start sfnd on 127.0.0.1:8083 with ./sfnd.db (Ctrl-C stops it)
#   make test       every test; last line "N passed, N failed"
#   make check      the same suite under ASan + UBSan (+ LeakSanitizer)
#   make bench      the workloads of ../shared/bench with figures
#   make deps       install the Debian packages the build and tests need

CC       ?= cc
PKGS     := jansson libuv libcurl openssl sqlite3
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
            -Wwrite-strings -Wformat=2 -Wpointer-arith -Werror
OPT      ?= -O2 -g
SANITIZE ?=
BUILD    ?= build
ifneq ($(SANITIZE),)
  OPT    := -O1 -g
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
  BUILD  := build/san
endif
CPPFLAGS += -I. -Iinclude -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS   += -std=c11 $(WARN) $(OPT) $(SANFLAGS) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
LDFLAGS  += $(SANFLAGS)

LIB_SRC  := $(wildcard util/*.c asl/*.c engine/*.c integrations/*.c integrations/aws/*.c store/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
SRV_SRC  := $(wildcard server/*.c)
SRV_OBJ  := $(SRV_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/crash/*.c bench/*.c)
TOOL_BIN := $(patsubst %.c,$(BUILD)/tools/%,$(notdir $(TOOL_SRC)))
EX_SRC   := $(wildcard examples/embed/*.c)
EX_BIN   := $(EX_SRC:examples/embed/%.c=$(BUILD)/examples/%)

DEB_PKGS := build-essential pkg-config libjansson-dev libuv1-dev libcurl4-openssl-dev \
            libssl-dev libsqlite3-dev libhttp-parser-dev python3 python3-botocore \
            python3-boto3 openssl awscli

.PHONY: all test check bench deps clean run run-example tests-bin
.SECONDARY:
all: $(BUILD)/sfn $(BUILD)/sfnd $(BUILD)/libsfn.a

$(BUILD)/libsfn.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# build/sfn hands over to build/sfn-aws (the same command with the AWS integrations, which
# load libcurl and OpenSSL) only when a definition needs them: a plain run starts in ~3 ms
CLI_LITE_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj-lite/%.o)
$(BUILD)/sfn: $(CLI_LITE_OBJ) $(BUILD)/libsfn.a $(BUILD)/sfn-aws
	$(CC) $(LDFLAGS) -Wl,--as-needed -o $@ $(CLI_LITE_OBJ) $(BUILD)/libsfn.a $(LDLIBS)

$(BUILD)/sfn-aws: $(CLI_OBJ) $(BUILD)/libsfn.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsfn.a $(LDLIBS)

$(BUILD)/obj-lite/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $< (lite)"
	@$(CC) $(CPPFLAGS) -DSFN_CLI_LITE $(CFLAGS) -c -o $@ $<

$(BUILD)/sfnd: $(SRV_OBJ) $(BUILD)/libsfn.a
	$(CC) $(LDFLAGS) -o $@ $(SRV_OBJ) $(BUILD)/libsfn.a $(LDLIBS) -lhttp_parser

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libsfn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsfn.a $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/embed/%.o $(BUILD)/libsfn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsfn.a $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/crash/%.o $(BUILD)/libsfn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsfn.a $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/bench/%.o $(BUILD)/libsfn.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsfn.a $(LDLIBS)

tests-bin: all $(TEST_BIN) $(EX_BIN) $(TOOL_BIN)

test: tests-bin
	@BUILD=$(BUILD) sh tests/run.sh

check:
	$(MAKE) SANITIZE=address,undefined test

bench: all $(BUILD)/tools/storebench $(BUILD)/tools/apibench
	@python3 bench/run.py --sfn $(BUILD)/sfn
	@python3 bench/store.py --build $(BUILD)
	@python3 bench/api.py --build $(BUILD)
	@/usr/bin/python3 bench/sync.py --build $(BUILD)

# sfnd's defaults: --listen 127.0.0.1:8083 --db sfnd.db (in the working directory)
run: all
	$(BUILD)/sfnd --listen 127.0.0.1:8083 --db sfnd.db

run-example: all
	$(BUILD)/sfn run examples/hello/definition.json --input-file examples/hello/input.json

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "deps: all present"; fi

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
