# lib/ — the shared library every program links (build/libfovea.a).
LIB_SRCS += $(wildcard lib/*.c)
