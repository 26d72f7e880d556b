# fovea/ — the front door: `fovea <stage> ARGS` runs fovea-<stage>.
$(eval $(call fv_program,fovea,fovea/main.c))
