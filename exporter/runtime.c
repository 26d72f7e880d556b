/* exporter/runtime.c — loads a .fovea model (format in runtime.h), checks
 * every field against every other before trusting it, and runs it: NHWC
 * activations, convolutions as im2col (or direct for 1x1) + GEMM — the INT8
 * kernels of kernels.c with fused requantization, or dnnl_sgemm for FP32 —
 * with batch slices spread over OpenMP threads. Activation buffers are
 * reused once their last reader has run (planned at open). */
#include "exporter/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <dnnl.h>

#include "exporter/kernels.h"
#include "exporter/rtint.h"
#include "fv_error.h"

/* ---------------------------------------------------------------- opening */

static int bad(const char *what, const char *fmt, int a, int b)
{
	char msg[160];
	snprintf(msg, sizeof msg, fmt, a, b);
	return fv_err_set(FV_E_CORRUPT, "%s: %s", what, msg);
}

/* Shape arithmetic in 64 bits so hostile sizes cannot wrap. */
static int dims_ok(uint64_t c, uint64_t h, uint64_t w)
{
	return c >= 1 && h >= 1 && w >= 1 && c <= 65536 && h <= 65536 && w <= 65536 &&
	       c * h * w <= ((uint64_t)1 << 30);
}

static int array_ok(const fv_rt *rt, uint64_t off, uint64_t len, uint64_t want)
{
	return len == want && off % 64 == 0 && off <= rt->h->data_len && len <= rt->h->data_len - off;
}

size_t fv_rt_wbytes(const fv_fovea_op *o, int int8)
{
	uint64_t cg = o->c / o->groups;
	if (int8)
		return (size_t)o->groups * fv_qgemm_packed_size((int)cg, (int)o->K);
	return (size_t)o->c * o->K * sizeof(float);
}

size_t fv_rt_bbytes(const fv_fovea_op *o, int int8)
{
	if (int8)
		return (size_t)o->groups * fv_round_up((int)(o->c / o->groups), 16) * 4;
	return (size_t)o->c * sizeof(float);
}

static int check_op(fv_rt *rt, int i, const char *what)
{
	const fv_fovea_op *o = &rt->ops[i];
	int int8 = rt->h->dtype == FV_RT_INT8;
	if (o->kind < FV_RT_CONV || o->kind >= FV_RT_OPKIND_END || o->act >= FV_RT_ACT_END)
		return bad(what, "op %d: unknown kind %d", i, (int)o->kind);
	if (o->in0 < 0 || o->in0 > i)
		return bad(what, "op %d: input %d out of range", i, o->in0);
	const uint32_t *in = rt->vshape[o->in0];
	if (o->ic != in[0] || o->ih != in[1] || o->iw != in[2])
		return bad(what, "op %d: input shape disagrees with value %d", i, o->in0);
	if (!dims_ok(o->c, o->h, o->w))
		return bad(what, "op %d: bad output shape (%d channels)", i, (int)o->c);
	int two = o->kind == FV_RT_ADD || o->kind == FV_RT_SCALE;
	if (two && (o->in1 < 0 || o->in1 > i))
		return bad(what, "op %d: second input %d out of range", i, o->in1);
	if (int8 && (!(o->out_scale > 0) || !isfinite(o->out_scale) || o->out_zp < 0 || o->out_zp > 255))
		return bad(what, "op %d: bad output quantization (zero point %d)", i, o->out_zp);
	if (o->kind != FV_RT_ACT && o->act > FV_RT_RELU6)
		return bad(what, "op %d: activation %d cannot be fused", i, (int)o->act);
	uint64_t k = o->k, s = o->stride, p = o->pad, d = o->dil;
	switch (o->kind) {
	case FV_RT_CONV: {
		if (k < 1 || k > 64 || s < 1 || s > 64 || d < 1 || d > 64 || p > 64 || o->groups < 1 ||
		    o->ic % o->groups || o->c % o->groups)
			return bad(what, "op %d: bad convolution settings (k %d)", i, (int)k);
		uint64_t ext = d * (k - 1) + 1;
		if (o->ih + 2 * p < ext || o->iw + 2 * p < ext ||
		    o->h != (o->ih + 2 * p - ext) / s + 1 || o->w != (o->iw + 2 * p - ext) / s + 1)
			return bad(what, "op %d: output %d rows do not follow from the input", i, (int)o->h);
		if (o->K != k * k * (o->ic / o->groups))
			return bad(what, "op %d: reduction length %d is wrong", i, (int)o->K);
		break;
	}
	case FV_RT_LINEAR:
		if (o->h != 1 || o->w != 1 || o->groups != 1 || (uint64_t)o->K != (uint64_t)o->ic * o->ih * o->iw)
			return bad(what, "op %d: bad linear shape (%d inputs)", i, (int)o->K);
		break;
	case FV_RT_ADD: {
		const uint32_t *b = rt->vshape[o->in1];
		if (b[0] != o->ic || b[1] != o->ih || b[2] != o->iw || o->c != o->ic || o->h != o->ih ||
		    o->w != o->iw)
			return bad(what, "op %d: add of different shapes (value %d)", i, o->in1);
		break;
	}
	case FV_RT_MAXPOOL:
	case FV_RT_AVGPOOL:
		if (k < 1 || k > 64 || s < 1 || s > 64 || p >= k || o->c != o->ic || o->ih + 2 * p < k ||
		    o->iw + 2 * p < k || o->h != (o->ih + 2 * p - k) / s + 1 ||
		    o->w != (o->iw + 2 * p - k) / s + 1)
			return bad(what, "op %d: bad pooling settings (k %d)", i, (int)k);
		break;
	case FV_RT_GAP:
		if (o->c != o->ic || o->h != 1 || o->w != 1)
			return bad(what, "op %d: bad global pool shape (%d channels)", i, (int)o->c);
		break;
	case FV_RT_ACT:
		if (o->c != o->ic || o->h != o->ih || o->w != o->iw || o->act == FV_RT_NONE)
			return bad(what, "op %d: bad activation (%d)", i, (int)o->act);
		break;
	case FV_RT_SCALE: {
		const uint32_t *b = rt->vshape[o->in1];
		if (b[0] != o->ic || b[1] != 1 || b[2] != 1 || o->c != o->ic || o->h != o->ih || o->w != o->iw)
			return bad(what, "op %d: scale by a value of the wrong shape (%d)", i, o->in1);
		break;
	}
	}
	if (o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR) {
		uint64_t cg = o->c / o->groups;
		if (!array_ok(rt, o->w_off, o->w_len, fv_rt_wbytes(o, int8)) ||
		    !array_ok(rt, o->b_off, o->b_len, fv_rt_bbytes(o, int8)) ||
		    (int8 && !array_ok(rt, o->m_off, o->m_len, (uint64_t)o->groups * fv_round_up((int)cg, 16) * 4)))
			return bad(what, "op %d: weights or biases out of place (%d bytes)", i, (int)o->w_len);
	}
	rt->vshape[i + 1][0] = o->c, rt->vshape[i + 1][1] = o->h, rt->vshape[i + 1][2] = o->w;
	return 0;
}

static int check_header(fv_rt *rt, const char *what)
{
	const fv_fovea_hdr *h = rt->h;
	if (rt->len < sizeof *h + 4 || memcmp(h->magic, FV_FOVEA_MAGIC, 8))
		return fv_err_set(FV_E_FORMAT, "%s: not a .fovea model (bad magic)", what);
	if (h->version > FV_FOVEA_VERSION || h->version == 0)
		return fv_err_set(FV_E_UNSUPPORTED, "%s: format version %u, this build reads %d", what,
				  h->version, FV_FOVEA_VERSION);
	if (h->file_size != rt->len)
		return fv_err_set(FV_E_CORRUPT, "%s: %zu bytes, the header says %llu (truncated?)", what,
				  rt->len, (unsigned long long)h->file_size);
	uint32_t crc;
	memcpy(&crc, rt->base + rt->len - 4, 4);
	if ((uint32_t)crc32(0, rt->base, (uInt)(rt->len - 4)) != crc)
		return fv_err_set(FV_E_CORRUPT, "%s: checksum mismatch", what);
	uint64_t body = rt->len - 4;
	if (h->dtype > FV_RT_INT8 || (h->in_c != 1 && h->in_c != 3) || !dims_ok(h->in_c, h->in_h, h->in_w) ||
	    h->classes < 1 || h->classes > 1000000 || h->nops < 1 || h->nops > 100000)
		return bad(what, "bad header (dtype %d, %d ops)", (int)h->dtype, (int)h->nops);
	if (h->names_off > body || h->names_len > body - h->names_off || h->ops_off % 64 ||
	    h->ops_off > body || (uint64_t)h->nops * sizeof(fv_fovea_op) > body - h->ops_off ||
	    h->data_off % 64 || h->data_off > body || h->data_len > body - h->data_off)
		return bad(what, "sections out of place (%d ops, %d)", (int)h->nops, 0);
	for (unsigned c = 0; c < h->in_c; c++)
		if (!(h->std[c] > 0) || !isfinite(h->std[c]) || !isfinite(h->mean[c]))
			return bad(what, "bad normalization for channel %d", (int)c, 0);
	if (h->dtype == FV_RT_INT8 && (!(h->in_scale > 0) || !isfinite(h->in_scale) || h->in_zp < 0 ||
				       h->in_zp > 255))
		return bad(what, "bad input quantization (zero point %d)", h->in_zp, 0);
	return 0;
}

static int parse_names(fv_rt *rt, const char *what)
{
	const fv_fovea_hdr *h = rt->h;
	rt->names = calloc(h->classes + 1, sizeof *rt->names);
	if (!rt->names)
		return ENOMEM;
	const char *p = (const char *)rt->base + h->names_off, *end = p + h->names_len;
	for (uint32_t i = 0; i < h->classes; i++) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		if (!z)
			return bad(what, "class name %d runs past its section", (int)i, 0);
		rt->names[i] = p;
		p = z + 1;
	}
	return 0;
}

static int open_common(fv_rt *rt, const char *what)
{
	int rc = check_header(rt, what);
	if (rc)
		return rc;
	const fv_fovea_hdr *h = rt->h;
	rt->ops = (const fv_fovea_op *)(rt->base + h->ops_off);
	rt->data = rt->base + h->data_off;
	rt->nvals = (int)h->nops + 1;
	rt->vshape = calloc((size_t)rt->nvals, sizeof *rt->vshape);
	if (!rt->vshape)
		return ENOMEM;
	rt->vshape[0][0] = h->in_c, rt->vshape[0][1] = h->in_h, rt->vshape[0][2] = h->in_w;
	if ((rc = parse_names(rt, what)))
		return rc;
	for (int i = 0; i < (int)h->nops; i++)
		if ((rc = check_op(rt, i, what)))
			return rc;
	const uint32_t *out = rt->vshape[h->nops];
	if (out[0] != h->classes || out[1] != 1 || out[2] != 1)
		return bad(what, "the last op gives %d values, not the %d classes", (int)out[0], (int)h->classes);
	fv_rt_info *in = &rt->info;
	in->dtype = (enum fv_rt_dtype)h->dtype;
	in->version = h->version;
	in->in_c = (int)h->in_c, in->in_h = (int)h->in_h, in->in_w = (int)h->in_w;
	in->classes = (int)h->classes;
	in->resize_shorter = (int)h->resize_shorter;
	memcpy(in->mean, h->mean, sizeof in->mean);
	memcpy(in->std, h->std, sizeof in->std);
	in->class_names = rt->names;
	memcpy(rt->model, h->model, sizeof h->model);
	rt->model[sizeof h->model] = 0;
	in->model = rt->model;
	in->dataset_version = h->dataset_version, in->step = h->step;
	in->file_size = rt->len;
	in->nops = (int)h->nops;
	return fv_rt_plan(rt);
}

int fv_rt_open_mem(fv_rt **out, const void *buf, size_t len)
{
	*out = NULL;
	fv_rt *rt = calloc(1, sizeof *rt);
	if (!rt)
		return ENOMEM;
	rt->base = buf, rt->len = len;
	rt->h = (const fv_fovea_hdr *)buf;
	if ((uintptr_t)buf % 64) {
		fv_rt_close(&rt);
		return fv_err_set(EINVAL, "model buffer is not 64-byte aligned");
	}
	int rc = open_common(rt, "model");
	if (rc) {
		fv_rt_close(&rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int fv_rt_open(fv_rt **out, const char *path)
{
	*out = NULL;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	struct stat st;
	fv_rt *rt = calloc(1, sizeof *rt);
	if (!rt) {
		rc = ENOMEM;
		goto out;
	}
	if (fstat(fd, &st)) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((size_t)st.st_size < sizeof(fv_fovea_hdr) + 4) {
		rc = fv_err_set(FV_E_FORMAT, "%s: %lld bytes is too short for a .fovea model", path,
				(long long)st.st_size);
		goto out;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		rc = fv_err_set(errno, "%s: mmap: %s", path, strerror(errno));
		goto out;
	}
	rt->base = m, rt->len = (size_t)st.st_size, rt->mapped = 1;
	rt->h = (const fv_fovea_hdr *)m;
	rc = open_common(rt, path);
out:
	close(fd);
	if (rc)
		fv_rt_close(&rt);
	*out = rt;
	return rc;
}

void fv_rt_close(fv_rt **p)
{
	fv_rt *rt = *p;
	if (!rt)
		return;
	if (rt->mapped)
		munmap((void *)rt->base, rt->len);
	for (int i = 0; i < rt->nws; i++) {
		free(rt->ws[i].arena);
		free(rt->ws[i].col);
	}
	free(rt->ws);
	free(rt->names);
	free(rt->vshape);
	free(rt->vslot);
	free(rt->slot_bytes);
	free(rt->last_use);
	free(rt->lut);
	free(rt);
	*p = NULL;
}

const fv_rt_info *fv_rt_info_get(const fv_rt *rt) { return &rt->info; }

void fv_rt_set_threads(fv_rt *rt, int threads) { rt->threads = threads < 0 ? 0 : threads; }

/* ---------------------------------------------------------------- running */

/* Workspace for `slices` slices of up to per images each. */
static int ws_reserve(fv_rt *rt, int slices, int per)
{
	if (slices > rt->nws) {
		fv_rt_ws *w = realloc(rt->ws, sizeof *w * (size_t)slices);
		if (!w)
			return ENOMEM;
		memset(w + rt->nws, 0, sizeof *w * (size_t)(slices - rt->nws));
		rt->ws = w, rt->nws = slices;
	}
	for (int s = 0; s < slices; s++) {
		fv_rt_ws *w = &rt->ws[s];
		if (w->per >= per)
			continue;
		free(w->arena);
		free(w->col);
		w->arena = w->col = NULL;
		w->per = 0;
		if (posix_memalign(&w->arena, 64, rt->arena_bytes * (size_t)per + 256) ||
		    posix_memalign(&w->col, 64, rt->col_bytes + 256)) {
			free(w->arena);
			w->arena = NULL;
			return ENOMEM;
		}
		/* Rows read past their end into slack; keep it defined. */
		memset(w->arena, 0, rt->arena_bytes * (size_t)per + 256);
		memset(w->col, 0, rt->col_bytes + 256);
		w->per = per;
	}
	return 0;
}

static int run_any(fv_rt *rt, const void *x, int u8, int n, float *logits, fv_rt_observe_fn fn,
		   void *ctx)
{
	if (n < 1 || !x || !logits)
		return fv_err_set(EINVAL, "run: %d images", n);
	int nth = rt->threads ? rt->threads : omp_get_max_threads();
	if (fn || nth < 1)
		nth = 1;
	if (nth > n)
		nth = n;
	int per = (n + nth - 1) / nth;
	nth = (n + per - 1) / per;
	int rc = ws_reserve(rt, nth, per);
	if (rc)
		return fv_err_set(rc, "run: no memory for a batch of %d", n);
	size_t in_elems = (size_t)rt->info.in_c * rt->info.in_h * rt->info.in_w;
	size_t esz = u8 ? 1 : sizeof(float);
	if (nth == 1) {
		fv_rt_slice(rt, &rt->ws[0], x, u8, n, logits, fn, ctx);
		return 0;
	}
#pragma omp parallel for num_threads(nth) schedule(static, 1)
	for (int t = 0; t < nth; t++) {
		int first = t * per, cnt = n - first < per ? n - first : per;
		fv_rt_slice(rt, &rt->ws[t], (const uint8_t *)x + (size_t)first * in_elems * esz, u8, cnt,
			    logits + (size_t)first * rt->info.classes, NULL, NULL);
	}
	return 0;
}

int fv_rt_run(fv_rt *rt, const float *x, int n, float *logits)
{
	return run_any(rt, x, 0, n, logits, NULL, NULL);
}

int fv_rt_run_u8(fv_rt *rt, const uint8_t *x, int n, float *logits)
{
	return run_any(rt, x, 1, n, logits, NULL, NULL);
}

int fv_rt_run_observe(fv_rt *rt, const float *x, int n, float *logits, fv_rt_observe_fn fn, void *ctx)
{
	if (rt->info.dtype != FV_RT_FP32)
		return fv_err_set(FV_E_UNSUPPORTED, "observing values needs an FP32 model");
	return run_any(rt, x, 0, n, logits, fn, ctx);
}
