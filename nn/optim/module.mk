# nn/optim — optimizer, LR schedules, checkpoint files, parameter freezing.
LIB_SRCS += nn/optim/sgd.c nn/optim/sched.c nn/optim/ckpt.c nn/optim/ckptdir.c nn/optim/params.c
