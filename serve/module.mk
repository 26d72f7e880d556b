# serve/ — fovea-serve: the inference server (HTTP via libmicrohttpd, ZMQ)
# and `fovea classify`. model.c and metrics.c go into libfovea so unit tests
# link them.
LIB_SRCS += serve/model.c serve/metrics.c
$(eval $(call fv_program,fovea-serve,serve/main.c serve/http.c serve/zmq.c serve/cli.c))
$(BIN)/fovea-serve: LDLIBS += -lmicrohttpd
