/* exporter/format.c — the xmodel's own bookkeeping and its .fovea writer
 * (the layout is documented in runtime.h; the runtime is its reader). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "exporter/kernels.h"
#include "exporter/rtint.h"
#include "exporter/xmodel.h"
#include "fv_error.h"

/* ---------------------------------------------------------------- xmodel */

size_t fv_xop_wcount(const fv_xop *o)
{
	if (o->kind == FV_RT_CONV)
		return (size_t)o->c * (o->ic / o->groups) * o->k * o->k;
	if (o->kind == FV_RT_LINEAR)
		return (size_t)o->c * o->ic * o->ih * o->iw;
	return 0;
}

void fv_xmodel_destroy(fv_xmodel **p)
{
	fv_xmodel *m = *p;
	if (!m)
		return;
	for (int i = 0; i < m->nops; i++) {
		free(m->ops[i].wt);
		free(m->ops[i].bias);
		free(m->ops[i].wq);
		free(m->ops[i].wscale);
	}
	free(m->ops);
	if (m->names)
		for (int i = 0; i < m->classes; i++)
			free(m->names[i]);
	free(m->names);
	free(m);
	*p = NULL;
}

static void *memdup(const void *p, size_t n)
{
	if (!p)
		return NULL;
	void *q = malloc(n ? n : 1);
	if (q)
		memcpy(q, p, n);
	return q;
}

int fv_xmodel_clone(const fv_xmodel *m, fv_xmodel **out)
{
	fv_xmodel *c = calloc(1, sizeof *c);
	if (!c)
		return ENOMEM;
	*c = *m;
	c->ops = calloc((size_t)m->nops + 1, sizeof *c->ops);
	c->names = NULL;
	c->cap = m->nops;
	int nomem = !c->ops;
	for (int i = 0; !nomem && i < m->nops; i++) {
		const fv_xop *o = &m->ops[i];
		fv_xop *d = &c->ops[i];
		size_t wn = fv_xop_wcount(o);
		*d = *o;
		d->wt = memdup(o->wt, wn * sizeof *o->wt);
		d->bias = memdup(o->bias, (size_t)o->c * sizeof *o->bias);
		d->wq = memdup(o->wq, wn);
		d->wscale = memdup(o->wscale, (size_t)o->c * sizeof *o->wscale);
		nomem |= (o->wt && !d->wt) || (o->bias && !d->bias) || (o->wq && !d->wq) ||
			 (o->wscale && !d->wscale);
	}
	if (!nomem && m->names) {
		c->names = calloc((size_t)m->classes, sizeof *c->names);
		nomem = !c->names;
		for (int i = 0; !nomem && i < m->classes; i++)
			nomem = !(c->names[i] = strdup(m->names[i]));
	}
	if (nomem) {
		fv_xmodel_destroy(&c);
		return ENOMEM;
	}
	*out = c;
	return 0;
}

void fv_xmodel_vshape(const fv_xmodel *m, int v, int *c, int *h, int *w)
{
	if (v == 0) {
		*c = m->in_c, *h = m->in_h, *w = m->in_w;
	} else {
		*c = m->ops[v - 1].c, *h = m->ops[v - 1].h, *w = m->ops[v - 1].w;
	}
}

void fv_xmodel_vquant(const fv_xmodel *m, int v, float *scale, int32_t *zp)
{
	if (v == 0) {
		*scale = m->in_scale, *zp = m->in_zp;
	} else {
		*scale = m->ops[v - 1].out_scale, *zp = m->ops[v - 1].out_zp;
	}
}

/* ---------------------------------------------------------------- writer */

static size_t align64(size_t x) { return (x + 63) / 64 * 64; }

/* Reduction order of the runtime: conv (r, s, c) within a group; linear HWC. */
static size_t kindex(const fv_xop *o, size_t k)
{
	if (o->kind == FV_RT_CONV) {
		size_t cg = (size_t)(o->ic / o->groups), kk = (size_t)o->k;
		size_t ci = k % cg, rs = k / cg;
		return ci * kk * kk + rs; /* PyTorch [cg][r][s] */
	}
	size_t C = (size_t)o->ic, HW = (size_t)o->ih * o->iw;
	return (k % C) * HW + k / C;
}

static size_t kred(const fv_xop *o)
{
	return o->kind == FV_RT_CONV ? (size_t)(o->ic / o->groups) * o->k * o->k
				     : (size_t)o->ic * o->ih * o->iw;
}

static int is_gemm(const fv_xop *o) { return o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR; }

/* Size of the data arrays of op o (to lay the file out before writing). */
static void op_arrays(const fv_xop *o, int int8, fv_fovea_op *r)
{
	r->kind = o->kind, r->act = o->act, r->in0 = o->in0, r->in1 = o->in1;
	r->c = (uint32_t)o->c, r->h = (uint32_t)o->h, r->w = (uint32_t)o->w;
	r->ic = (uint32_t)o->ic, r->ih = (uint32_t)o->ih, r->iw = (uint32_t)o->iw;
	r->k = (uint32_t)o->k, r->stride = (uint32_t)o->stride, r->pad = (uint32_t)o->pad;
	r->dil = (uint32_t)o->dil, r->groups = (uint32_t)o->groups;
	r->out_scale = int8 ? o->out_scale : 0;
	r->out_zp = int8 ? o->out_zp : 0;
	if (!is_gemm(o))
		return;
	r->K = (uint32_t)kred(o);
	r->w_len = fv_rt_wbytes(r, int8);
	r->b_len = fv_rt_bbytes(r, int8);
	r->m_len = int8 ? r->b_len : 0;
}

static void fill_fp32(const fv_xop *o, uint8_t *data, const fv_fovea_op *r)
{
	float *w = (float *)(data + r->w_off), *b = (float *)(data + r->b_off);
	size_t K = r->K;
	for (size_t n = 0; n < (size_t)o->c; n++) {
		for (size_t k = 0; k < K; k++)
			w[n * K + k] = o->wt[n * K + kindex(o, k)];
		b[n] = o->bias[n];
	}
}

static int fill_int8(const fv_xmodel *m, int idx, uint8_t *data, const fv_fovea_op *r)
{
	const fv_xop *o = &m->ops[idx];
	int last = idx == m->nops - 1;
	size_t K = r->K, cg = (size_t)(o->c / o->groups), n16 = (size_t)fv_round_up((int)cg, 16);
	size_t psz = fv_qgemm_packed_size((int)cg, (int)K);
	float si, so = o->out_scale;
	int32_t zi;
	fv_xmodel_vquant(m, o->in0, &si, &zi);
	int8_t *tmp = malloc(cg * K);
	if (!tmp)
		return ENOMEM;
	int32_t *bias = (int32_t *)(data + r->b_off);
	float *mult = (float *)(data + r->m_off);
	for (size_t g = 0; g < (size_t)o->groups; g++) {
		for (size_t j = 0; j < cg; j++) {
			size_t n = g * cg + j;
			int64_t sum = 0;
			for (size_t k = 0; k < K; k++) {
				tmp[j * K + k] = o->wq[n * K + kindex(o, k)];
				sum += tmp[j * K + k];
			}
			double s = (double)si * o->wscale[n];
			double bq = nearbyint((double)o->bias[n] / s) - (double)zi * (double)sum;
			bq = bq > 2147483647.0 ? 2147483647.0 : bq < -2147483648.0 ? -2147483648.0 : bq;
			bias[g * n16 + j] = (int32_t)bq;
			mult[g * n16 + j] = last ? (float)s : (float)(s / so);
		}
		fv_qgemm_pack((int)cg, (int)K, tmp, (int8_t *)(data + r->w_off + g * psz));
	}
	free(tmp);
	return 0;
}

int fv_xmodel_serialize(const fv_xmodel *m, int int8, void **bufp, size_t *lenp)
{
	*bufp = NULL, *lenp = 0;
	if (m->nops < 1 || (int8 && !m->quantized))
		return fv_err_set(EINVAL, "serialize: %s model with %d ops",
				  m->quantized ? "quantized" : "unquantized", m->nops);
	char num[16];
	size_t names_len = 0;
	for (int i = 0; i < m->classes; i++)
		names_len += (m->names ? strlen(m->names[i]) : (size_t)snprintf(num, sizeof num, "%d", i)) + 1;
	fv_fovea_op *recs = calloc((size_t)m->nops, sizeof *recs);
	if (!recs)
		return ENOMEM;
	size_t ops_off = align64(sizeof(fv_fovea_hdr) + names_len);
	size_t data_off = align64(ops_off + (size_t)m->nops * sizeof(fv_fovea_op)), cur = 0;
	for (int i = 0; i < m->nops; i++) {
		fv_fovea_op *r = &recs[i];
		op_arrays(&m->ops[i], int8, r);
		if (!r->w_len)
			continue;
		r->w_off = cur, cur = align64(cur + r->w_len);
		r->b_off = cur, cur = align64(cur + r->b_len);
		if (r->m_len)
			r->m_off = cur, cur = align64(cur + r->m_len);
	}
	size_t len = data_off + cur + 4;
	uint8_t *buf = NULL;
	if (posix_memalign((void **)&buf, 64, len)) {
		free(recs);
		return ENOMEM;
	}
	memset(buf, 0, len);
	fv_fovea_hdr *h = (fv_fovea_hdr *)buf;
	memcpy(h->magic, FV_FOVEA_MAGIC, 8);
	h->version = FV_FOVEA_VERSION, h->dtype = int8 ? FV_RT_INT8 : FV_RT_FP32;
	h->file_size = len;
	h->in_c = (uint32_t)m->in_c, h->in_h = (uint32_t)m->in_h, h->in_w = (uint32_t)m->in_w;
	h->classes = (uint32_t)m->classes, h->resize_shorter = (uint32_t)m->resize_shorter;
	h->nops = (uint32_t)m->nops;
	memcpy(h->mean, m->mean, sizeof h->mean);
	memcpy(h->std, m->std, sizeof h->std);
	h->in_scale = int8 ? m->in_scale : 0, h->in_zp = int8 ? m->in_zp : 0;
	h->names_off = sizeof *h, h->names_len = names_len;
	h->ops_off = ops_off, h->data_off = data_off, h->data_len = cur;
	h->dataset_version = m->dataset_version, h->step = m->step;
	memcpy(h->model, m->model, sizeof h->model - 1);
	char *np = (char *)buf + sizeof *h;
	for (int i = 0; i < m->classes; i++) {
		const char *s = m->names ? m->names[i] : (snprintf(num, sizeof num, "%d", i), num);
		size_t l = strlen(s) + 1;
		memcpy(np, s, l);
		np += l;
	}
	int rc = 0;
	for (int i = 0; i < m->nops && !rc; i++) {
		if (!recs[i].w_len)
			continue;
		if (int8)
			rc = fill_int8(m, i, buf + data_off, &recs[i]);
		else
			fill_fp32(&m->ops[i], buf + data_off, &recs[i]);
	}
	memcpy(buf + ops_off, recs, (size_t)m->nops * sizeof *recs);
	free(recs);
	if (rc) {
		free(buf);
		return rc;
	}
	uint32_t crc = (uint32_t)crc32(0, buf, (uInt)(len - 4));
	memcpy(buf + len - 4, &crc, 4);
	*bufp = buf, *lenp = len;
	return 0;
}

int fv_xmodel_write(const fv_xmodel *m, int int8, const char *path, size_t *lenp)
{
	void *buf;
	size_t len;
	int rc = fv_xmodel_serialize(m, int8, &buf, &len);
	if (rc)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, (uint8_t *)buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = fv_err_set(errno ? errno : EIO, "%s: write: %s", path, strerror(errno));
			break;
		}
		done += (size_t)w;
	}
	if (!rc && fsync(fd))
		rc = fv_err_set(errno, "%s: fsync: %s", path, strerror(errno));
	if (close(fd) && !rc)
		rc = fv_err_set(errno, "%s: close: %s", path, strerror(errno));
	if (lenp)
		*lenp = len;
out:
	free(buf);
	return rc;
}
