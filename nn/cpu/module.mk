# nn/cpu/ — the CPU backend (oneDNN). Our loops use OpenMP, the runtime
# Debian's libdnnl is built with, so one thread setting governs both.
LIB_SRCS += $(wildcard nn/cpu/*.c)
$(OBJ)/nn/cpu/%.o: CFLAGS += -fopenmp
LDLIBS += -lgomp
