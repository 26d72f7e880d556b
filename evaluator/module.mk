# evaluator/ — fovea-evaluator: scores checkpoints on the val split, keeps
# RUNDIR/eval.jsonl and the champion, explains predictions (Grad-CAM).
# nn/inspect.c (activations and gradients of inner nodes) is listed here: it
# exists for explain.
LIB_SRCS += evaluator/json.c evaluator/results.c evaluator/champion.c evaluator/eval.c nn/inspect.c
$(eval $(call fv_program,fovea-evaluator,evaluator/main.c evaluator/daemon.c evaluator/oneshot.c evaluator/explain.c))
