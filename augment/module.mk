# augment/ — the fovea-augment worker program (protocol side).
$(eval $(call fv_program,fovea-augment,augment/main.c augment/worker.c))
