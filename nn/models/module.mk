# nn/models/ — the model zoo (named models) and the text model spec parser.
LIB_SRCS += $(wildcard nn/models/*.c)
