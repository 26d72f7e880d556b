/* exporter/xmodel.h — the exporter's in-memory model: the folded graph the
 * .fovea and ONNX writers both serialize. It is the runtime's op list
 * (values, kinds, shapes) with weights still in PyTorch order, plus the
 * quantization the calibration chose. Stages:
 *
 *   fv_fold()          fv_net + parameter data -> FP32 xmodel (BN folded, ReLU fused)
 *   fv_calib_*()       ranges of every value, from images run through the FP32 model
 *   fv_quant_apply()   per-channel int8 weights + per-tensor uint8 activations
 *   fv_xmodel_serialize() / fv_onnx_write()   the files
 */
#ifndef FV_XMODEL_H
#define FV_XMODEL_H

#include <stddef.h>
#include <stdint.h>
#include "exporter/runtime.h"
#include "nn/net.h"

typedef struct fv_xop {
	enum fv_rt_opkind kind;
	enum fv_rt_act act;     /* fused (conv/linear/add) or the op itself (ACT) */
	int in0, in1;           /* value ids; value 0 is the normalized input, op i makes i + 1 */
	int c, h, w;            /* output shape */
	int ic, ih, iw;         /* shape of in0 */
	int k, stride, pad, dil, groups;
	float *wt;              /* conv: [c][ic/groups][k][k]; linear: [c][ic*ih*iw] (CHW order) */
	float *bias;            /* [c] */
	/* quantization */
	float out_scale;
	int32_t out_zp;
	int8_t *wq;             /* same layout as wt, in [-63, 63] */
	float *wscale;          /* [c] */
} fv_xop;

typedef struct fv_xmodel {
	int nops, cap;
	fv_xop *ops;
	int in_c, in_h, in_w, classes, resize_shorter;
	float mean[3], std[3];
	float in_scale;         /* quantization of value 0 */
	int32_t in_zp;
	int quantized;          /* wq / scales filled */
	char **names;           /* classes names (owned) */
	char model[64];
	uint64_t dataset_version, step;
} fv_xmodel;

void fv_xmodel_destroy(fv_xmodel **p);
/* Deep copy (weights, names, quantization). */
int fv_xmodel_clone(const fv_xmodel *m, fv_xmodel **out);
/* Per-value shape: c, h, w of value v. */
void fv_xmodel_vshape(const fv_xmodel *m, int v, int *c, int *h, int *w);
/* Quantization of value v. */
void fv_xmodel_vquant(const fv_xmodel *m, int v, float *scale, int32_t *zp);
/* Weight elements of a conv/linear op. */
size_t fv_xop_wcount(const fv_xop *o);

/* ---- fold.c ---- */
/* Build the FP32 model from net's graph with pdata[i] the values of
 * fv_net_params(net)[i]: batch norms folded into the conv/linear before
 * them (or kept as a per-channel 1x1 depthwise conv when there is none),
 * ReLU/ReLU6 fused into the conv/linear/add before them, dropout and
 * flatten removed. mean/std/names etc. are left for the caller. Returns 0,
 * ENOMEM, or FV_E_UNSUPPORTED naming the node it cannot express. */
int fv_fold(const fv_net *net, const float *const *pdata, fv_xmodel **out);

/* ---- format.c ---- */
/* The .fovea bytes of m (FP32, or INT8 when int8 and m is quantized) in a
 * 64-byte aligned buffer the caller frees. Returns 0, ENOMEM or EINVAL. */
int fv_xmodel_serialize(const fv_xmodel *m, int int8, void **buf, size_t *len);
/* Serialize and write to path (not atomic: the caller writes into a temp dir). */
int fv_xmodel_write(const fv_xmodel *m, int int8, const char *path, size_t *len);

/* ---- quant.c ---- */
enum fv_calib_method { FV_CALIB_MINMAX, FV_CALIB_PERCENTILE, FV_CALIB_KL, FV_CALIB_COUNT };
const char *fv_calib_name(enum fv_calib_method m);

/* Quantize every conv/linear's weights per output channel (symmetric, [-63, 63]). */
int fv_quant_weights(fv_xmodel *m);
/* Activation quantization from ranges lo[v] <= 0 <= hi[v] for every value
 * (uint8 asymmetric: scale = (hi - lo) / 255, zp = round(-lo / scale));
 * pooling outputs inherit their input's. Needs fv_quant_weights first. */
int fv_quant_apply(fv_xmodel *m, const float *lo, const float *hi);

/* ---- calib.c ---- */
typedef struct fv_calib fv_calib;
/* Statistics of every value of m, gathered over images run through the FP32
 * runtime rt32 (built from m): call fv_calib_pass twice over the same
 * images (the first finds ranges, the second fills 2048-bin histograms). */
int fv_calib_new(fv_calib **out, const fv_xmodel *m);
void fv_calib_destroy(fv_calib **p);
int fv_calib_pass(fv_calib *c, fv_rt *rt32, const float *x, int n);
void fv_calib_next(fv_calib *c); /* after the first pass over all images */
/* Ranges by method (percentile: pct, e.g. 99.99). lo/hi: nvalues entries. */
int fv_calib_ranges(const fv_calib *c, enum fv_calib_method method, double pct, float *lo, float *hi);
/* TensorRT's entropy calibration on one histogram of |x| (nbins bins over
 * [0, amax]): the threshold minimizing KL(P || Q) with `levels` quantization
 * bins. Exposed for the tests. */
double fv_calib_kl_threshold(const double *hist, int nbins, double amax, int levels);
/* The value below which pct percent of the histogram's mass lies. */
double fv_calib_percentile(const double *hist, int nbins, double amax, double pct);

#endif
