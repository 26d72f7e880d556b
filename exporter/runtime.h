/* exporter/runtime.h — the fovea inference runtime: loads a .fovea model
 * (INT8 or FP32) by mmap and runs it on raw pixels, with no copy of the
 * weights. fovea-exporter verifies with it and fovea-serve links it.
 *
 *   fv_rt *rt;
 *   if (fv_rt_open(&rt, "models/current/model.fovea")) die(fv_err_msg(rc));
 *   const fv_rt_info *in = fv_rt_info_get(rt);   // input c/h/w, classes, names
 *   fv_rt_run(rt, pixels, n, logits);            // n x c x h x w floats 0..255
 *   fv_rt_close(&rt);
 *
 * One fv_rt runs one batch at a time (its workspace is per handle); open
 * the file twice for two concurrent callers (the pages are shared).
 *
 * ---- The file (version 1, little-endian) ----------------------------------
 *   fv_fovea_hdr (256 bytes): magic "FOVEAMDL", version, dtype (0 fp32,
 *       1 int8), file size, input c/h/w, classes, resize_shorter, mean/std
 *       (pixel units), the input's quantization, section offsets
 *   class names: `classes` NUL-terminated strings
 *   ops: nops x fv_fovea_op (128 bytes), in execution order. Value 0 is the
 *       normalized input; op i writes value i + 1; in0/in1 name values. The
 *       last op's value is the logits.
 *   data: every array 64-byte aligned (offsets relative to data_off).
 *       INT8 conv/linear: weights int8 in the packed GEMM layout of
 *       exporter/kernels.h, one block per group; bias int32 (with the input
 *       zero point's term folded in) and requantization multipliers float,
 *       round_up(cout/groups, 16) entries per group. FP32: weights float
 *       [cout][k][k][cin/groups] (NHWC order), bias float [cout].
 *   u32 CRC-32 (zlib) of every byte before it.
 * Activations are NHWC; linear layers read their input flattened in HWC
 * order (the exporter permutes weights to match). INT8 activations are
 * uint8 asymmetric per tensor (real = (q - zp) * scale); weights int8
 * symmetric per output channel in [-63, 63] (see kernels.h). */
#ifndef FV_RUNTIME_H
#define FV_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#define FV_FOVEA_MAGIC "FOVEAMDL"
#define FV_FOVEA_VERSION 1

enum fv_rt_dtype { FV_RT_FP32 = 0, FV_RT_INT8 = 1 };

enum fv_rt_opkind {
	FV_RT_CONV = 1, FV_RT_LINEAR, FV_RT_ADD, FV_RT_MAXPOOL, FV_RT_AVGPOOL, FV_RT_GAP,
	FV_RT_ACT, FV_RT_SCALE, FV_RT_OPKIND_END
};
/* Fused (conv/linear/add) or standalone (ACT) activation. */
enum fv_rt_act { FV_RT_NONE = 0, FV_RT_RELU, FV_RT_RELU6, FV_RT_SIGMOID, FV_RT_SILU, FV_RT_ACT_END };

typedef struct fv_fovea_hdr {
	char magic[8];
	uint32_t version, dtype;
	uint64_t file_size;
	uint32_t in_c, in_h, in_w, classes;
	uint32_t resize_shorter, nops, reserved0, reserved1;
	float mean[3], std[3];
	float in_scale;
	int32_t in_zp;
	uint64_t names_off, names_len, ops_off, data_off, data_len;
	uint64_t dataset_version, step;
	char model[64];       /* the model spec's first 63 bytes, informative */
	uint8_t pad[48];
} fv_fovea_hdr;
_Static_assert(sizeof(fv_fovea_hdr) == 256, "fv_fovea_hdr is 256 bytes on disk");

typedef struct fv_fovea_op {
	uint32_t kind, act;
	int32_t in0, in1;
	uint32_t c, h, w;      /* output shape */
	uint32_t ic, ih, iw;   /* shape of in0 */
	uint32_t k, stride, pad, dil, groups;
	uint32_t K;            /* reduction length per group */
	float out_scale;       /* INT8: output quantization */
	int32_t out_zp;
	uint64_t w_off, w_len, b_off, b_len, m_off, m_len;
	uint8_t reserved[8];
} fv_fovea_op;
_Static_assert(sizeof(fv_fovea_op) == 128, "fv_fovea_op is 128 bytes on disk");

typedef struct fv_rt fv_rt;

typedef struct fv_rt_info {
	enum fv_rt_dtype dtype;
	uint32_t version;
	int in_c, in_h, in_w, classes, resize_shorter;
	float mean[3], std[3];       /* pixel units, as the eval transform uses */
	const char *const *class_names; /* classes entries, valid until close */
	const char *model;           /* informative spec prefix */
	uint64_t dataset_version, step;
	size_t file_size;
	int nops;
} fv_rt_info;

/* Map and validate path. Returns 0, an errno (detail names the file),
 * FV_E_FORMAT (not a .fovea file), FV_E_UNSUPPORTED (newer version) or
 * FV_E_CORRUPT (truncated, checksum, or a malformed op), with one line of
 * detail. Never crashes on a damaged file. */
int fv_rt_open(fv_rt **out, const char *path);
/* The same over len bytes at buf (64-byte aligned), borrowed: buf must stay
 * valid and unchanged until fv_rt_close. */
int fv_rt_open_mem(fv_rt **out, const void *buf, size_t len);
void fv_rt_close(fv_rt **p);

const fv_rt_info *fv_rt_info_get(const fv_rt *rt);
/* Threads for batch-parallel runs (0 = all cores, the default). */
void fv_rt_set_threads(fv_rt *rt, int threads);

/* Logits (n x classes) of n images x, float32 NCHW raw pixels 0..255 after
 * the eval geometry. Returns 0, ENOMEM or EINVAL (n < 1). */
int fv_rt_run(fv_rt *rt, const float *x, int n, float *logits);
/* The same from uint8 NHWC pixels (the augment worker's U8 layout). */
int fv_rt_run_u8(fv_rt *rt, const uint8_t *x, int n, float *logits);

/* Calibration hook (FP32 models): fn sees every value after it is
 * computed, NHWC floats of n images (value 0 is the normalized input). */
typedef void (*fv_rt_observe_fn)(void *ctx, int value, const float *data, size_t count, int c);
int fv_rt_run_observe(fv_rt *rt, const float *x, int n, float *logits, fv_rt_observe_fn fn,
		      void *ctx);

#endif
