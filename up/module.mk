# up/ — fovea-up: `fovea up` (the pipeline on one machine), `fovea status`,
# and the `fovea keygen` hook: fv_keygen_main is a weak reference, so the
# archive member defining it (lib/fv_curve.c, where built) is pulled in
# explicitly.
fv_up_comma := ,
$(eval $(call fv_program,fovea-up,up/main.c up/super.c up/status.c up/status_ep.c))
$(BIN)/fovea-up: LDFLAGS += $(if $(wildcard lib/fv_curve.c),-Wl$(fv_up_comma)-u$(fv_up_comma)fv_keygen_main)
