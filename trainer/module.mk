# trainer/ — fovea-trainer: dataset -> epoch plan -> augment workers -> nn engine -> checkpoints.
LIB_SRCS += trainer/plan.c trainer/options.c trainer/report.c trainer/feed.c
LIB_SRCS += trainer/run.c trainer/inspect.c trainer/rounds.c trainer/rounds_show.c trainer/live.c
$(eval $(call fv_program,fovea-trainer,trainer/main.c))
