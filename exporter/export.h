/* exporter/export.h — one export, start to end: checkpoint -> folded FP32
 * -> calibrated INT8 -> verified on val -> model.fovea, model-fp32.fovea,
 * model.onnx, model-fp32.onnx, manifest published as MODELDIR/vN with
 * MODELDIR/current pointing at it. The one-shot command and the daemon both
 * call fv_export_run. */
#ifndef FV_EXPORT_H
#define FV_EXPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fv_export_opts {
	char *ckpt, *db, *out;
	double max_drop;      /* points of top-1 INT8 may lose against FP32 */
	int calib;            /* 0 auto (best on val), else 1 + fv_calib_method */
	double percentile;    /* for the percentile method */
	long calib_images;    /* train images for calibration */
	long select_images;   /* val images used to choose the method (0 = all) */
	long val_images;      /* val images for the verification (0 = all) */
	long threads;         /* runtime threads, 0 = all cores */
	long seed;            /* calibration subset */
} fv_export_opts;

typedef struct fv_export_result {
	int published;
	unsigned version;           /* N of MODELDIR/vN */
	char dir[4400];             /* MODELDIR/vN */
	char model[256];
	char calib[32];             /* the method used */
	uint64_t step, dataset_version, val_n;
	double top1_fp32, top1_int8, agree; /* fractions; agree: same label INT8 vs FP32 */
	double method_top1[3];      /* per method on the selection subset (-1: not tried) */
	size_t size_fovea, size_fovea_fp32, size_onnx, size_onnx_fp32;
	double seconds;
} fv_export_result;

/* Run one export. Returns 0 when published; FV_E_MISMATCH when INT8 lost
 * more than max_drop points (nothing published; fv_err_msg says by how
 * much); otherwise the error of the step that failed, with detail. r is
 * filled as far as the export got. */
int fv_export_run(const fv_export_opts *o, fv_export_result *r);

/* The step of MODELDIR/current's export (from its manifest), or 0 when
 * there is none; *source (may be NULL) gets the checkpoint it came from. */
uint64_t fv_export_current_step(const char *out, char *source, size_t cap);

#endif
