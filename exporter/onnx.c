/* exporter/onnx.c — the xmodel as ONNX (opset 13), built with protobuf-c
 * from the onnx.proto Debian's libonnx-dev ships (generated at build time).
 *
 * The graph takes "pixels" (float32 [batch, C, H, W], raw 0..255 after the
 * eval geometry), normalizes with Sub/Div, and gives "logits" [batch,
 * classes]. The FP32 form uses float Conv/Gemm/... with the folded weights.
 * The INT8 form is QDQ: every activation passes QuantizeLinear (uint8, the
 * runtime's scale and zero point) + DequantizeLinear, weights are int8
 * initializers behind a per-channel DequantizeLinear (axis 0), biases int32
 * with scale s_in * s_w — exactly the numbers model.fovea computes with.
 * Class names and preprocessing go into metadata_props. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter/onnx.h"
#include "fv_error.h"
#include "onnx/onnx.pb-c.h"

typedef struct ow {
	jmp_buf oom;
	void **mem;
	size_t nmem, cmem;
	Onnx__NodeProto **nodes;
	size_t nn, cn;
	Onnx__TensorProto **inits;
	size_t ni, ci;
	const fv_xmodel *m;
	int int8;
	int *rank;           /* per value: 4 (NCHW) or 2 (N x features) */
} ow;

/* ---------------------------------------------------------------- building blocks */

static void *al(ow *w, size_t n)
{
	if (w->nmem == w->cmem) {
		size_t c = w->cmem ? 2 * w->cmem : 256;
		void **m = realloc(w->mem, sizeof *m * c);
		if (!m)
			longjmp(w->oom, 1);
		w->mem = m, w->cmem = c;
	}
	void *p = calloc(1, n ? n : 1);
	if (!p)
		longjmp(w->oom, 1);
	return w->mem[w->nmem++] = p;
}

static char *str(ow *w, const char *fmt, ...) __attribute__((format(printf, 2, 3), noinline));
static char *str(ow *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	if (!fmt) /* never; tells UBSan-instrumented GCC so (it warns of a null format) */
		fmt = "";
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	char *s = al(w, (size_t)(n > 0 ? n : 0) + 1);
	if ((size_t)n < sizeof tmp) {
		memcpy(s, tmp, (size_t)n + 1);
		return s;
	}
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static void push(ow *w, void ***arr, size_t *n, size_t *cap, void *item)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		void **a = realloc(*arr, sizeof *a * c);
		if (!a)
			longjmp(w->oom, 1);
		*arr = a, *cap = c;
	}
	(*arr)[(*n)++] = item;
}

/* A node op(in...) -> out; in is NULL-terminated. */
static Onnx__NodeProto *node(ow *w, const char *op, const char *out, ...)
{
	Onnx__NodeProto *n = al(w, sizeof *n);
	onnx__node_proto__init(n);
	n->op_type = (char *)op;
	n->name = str(w, "%s_%zu", op, w->nn);
	va_list ap;
	va_start(ap, out);
	const char *in;
	char **ins = al(w, sizeof *ins * 4);
	while ((in = va_arg(ap, const char *)) && n->n_input < 4)
		ins[n->n_input++] = (char *)in;
	va_end(ap);
	n->input = ins;
	n->output = al(w, sizeof *n->output);
	n->output[0] = (char *)out;
	n->n_output = 1;
	push(w, (void ***)&w->nodes, &w->nn, &w->cn, n);
	return n;
}

static Onnx__AttributeProto *attr(ow *w, Onnx__NodeProto *n, const char *name)
{
	Onnx__AttributeProto **a = al(w, sizeof *a * (n->n_attribute + 1));
	if (n->n_attribute) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(a, n->attribute, sizeof *a * n->n_attribute);
	Onnx__AttributeProto *t = al(w, sizeof *t);
	onnx__attribute_proto__init(t);
	t->name = (char *)name;
	a[n->n_attribute++] = t;
	n->attribute = a;
	return t;
}

static void attr_i(ow *w, Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *t = attr(w, n, name);
	t->has_type = 1, t->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	t->has_i = 1, t->i = v;
}

static void attr_ints(ow *w, Onnx__NodeProto *n, const char *name, int64_t a, int64_t b, int four)
{
	Onnx__AttributeProto *t = attr(w, n, name);
	t->has_type = 1, t->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	t->n_ints = four ? 4 : 2;
	t->ints = al(w, sizeof *t->ints * 4);
	t->ints[0] = a, t->ints[1] = b, t->ints[2] = a, t->ints[3] = b;
}

/* An initializer; data is copied. ndims 0 is a scalar. */
static const char *init(ow *w, const char *name, int dtype, int ndims, const int64_t *dims,
			const void *data, size_t bytes)
{
	Onnx__TensorProto *t = al(w, sizeof *t);
	onnx__tensor_proto__init(t);
	t->name = (char *)name;
	t->has_data_type = 1, t->data_type = dtype;
	t->n_dims = (size_t)ndims;
	t->dims = al(w, sizeof *t->dims * (size_t)(ndims ? ndims : 1));
	if (ndims)
		memcpy(t->dims, dims, sizeof *t->dims * (size_t)ndims);
	t->has_raw_data = 1;
	t->raw_data.len = bytes;
	t->raw_data.data = al(w, bytes);
	memcpy(t->raw_data.data, data, bytes);
	push(w, (void ***)&w->inits, &w->ni, &w->ci, t);
	return name;
}

static const char *scalar_f(ow *w, const char *name, float v)
{
	return init(w, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, &v, sizeof v);
}

/* ---------------------------------------------------------------- the graph */

static const char *vname(const ow *w, ow *a, int v)
{
	return w->int8 ? str(a, "v%d_dq", v) : str(a, "v%d", v);
}

/* After value v (float, named "v<v>") is made: its QuantizeLinear/DequantizeLinear pair. */
static void qdq(ow *w, int v)
{
	if (!w->int8)
		return;
	float s;
	int32_t z;
	fv_xmodel_vquant(w->m, v, &s, &z);
	uint8_t zp = (uint8_t)z;
	const char *sn = scalar_f(w, str(w, "q%d_scale", v), s);
	const char *zn = init(w, str(w, "q%d_zero", v), ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0, NULL, &zp, 1);
	node(w, "QuantizeLinear", str(w, "v%d_q", v), str(w, "v%d", v), sn, zn, NULL);
	node(w, "DequantizeLinear", str(w, "v%d_dq", v), str(w, "v%d_q", v), sn, zn, NULL);
}

/* Weights and bias of gemm op i: float initializers, or int8/int32 behind DequantizeLinear. */
static void params(ow *w, int i, const char **wn, const char **bn)
{
	const fv_xop *o = &w->m->ops[i];
	int64_t dims[4] = { o->c, o->ic / o->groups, o->k, o->k };
	int nd = 4;
	if (o->kind == FV_RT_LINEAR)
		dims[1] = (int64_t)o->ic * o->ih * o->iw, nd = 2;
	size_t wc = fv_xop_wcount(o);
	int64_t c = o->c;
	if (!w->int8) {
		*wn = init(w, str(w, "w%d", i), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, nd, dims, o->wt, wc * 4);
		*bn = init(w, str(w, "b%d", i), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &c, o->bias, (size_t)c * 4);
		return;
	}
	float si;
	int32_t zi;
	fv_xmodel_vquant(w->m, o->in0, &si, &zi);
	int32_t *bq = al(w, sizeof *bq * (size_t)c);
	float *bs = al(w, sizeof *bs * (size_t)c);
	for (int n = 0; n < c; n++) {
		double s = (double)si * o->wscale[n], q = nearbyint(o->bias[n] / s);
		bq[n] = (int32_t)(q > 2147483647.0 ? 2147483647.0 : q < -2147483648.0 ? -2147483648.0 : q);
		bs[n] = (float)s;
	}
	const char *wq = init(w, str(w, "w%d_q", i), ONNX__TENSOR_PROTO__DATA_TYPE__INT8, nd, dims, o->wq, wc);
	const char *ws = init(w, str(w, "w%d_scale", i), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &c,
			      o->wscale, (size_t)c * 4);
	const char *wz = init(w, str(w, "w%d_zero", i), ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, &c,
			      al(w, (size_t)c), (size_t)c);
	attr_i(w, node(w, "DequantizeLinear", *wn = str(w, "w%d", i), wq, ws, wz, NULL), "axis", 0);
	const char *bqn = init(w, str(w, "b%d_q", i), ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, &c, bq,
			       (size_t)c * 4);
	const char *bsn = init(w, str(w, "b%d_scale", i), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, &c, bs,
			       (size_t)c * 4);
	const char *bz = init(w, str(w, "b%d_zero", i), ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1, &c,
			      al(w, (size_t)c * 4), (size_t)c * 4);
	attr_i(w, node(w, "DequantizeLinear", *bn = str(w, "b%d", i), bqn, bsn, bz, NULL), "axis", 0);
}

/* Fused or standalone activation from `in` to `out`. */
static void activation(ow *w, int act, const char *in, const char *out)
{
	switch (act) {
	case FV_RT_RELU:
		node(w, "Relu", out, in, NULL);
		break;
	case FV_RT_RELU6:
		node(w, "Clip", out, in, scalar_f(w, str(w, "%s_lo", out), 0), scalar_f(w, str(w, "%s_hi", out), 6),
		     NULL);
		break;
	case FV_RT_SIGMOID:
		node(w, "Sigmoid", out, in, NULL);
		break;
	case FV_RT_SILU:
		node(w, "Sigmoid", str(w, "%s_sig", out), in, NULL);
		node(w, "Mul", out, in, str(w, "%s_sig", out), NULL);
		break;
	default:
		node(w, "Identity", out, in, NULL);
	}
}

static int op(ow *w, int i)
{
	const fv_xop *o = &w->m->ops[i];
	int last = i == w->m->nops - 1;
	const char *in = vname(w, w, o->in0), *out = str(w, "v%d", i + 1);
	const char *pre = o->act && o->kind != FV_RT_ACT ? str(w, "v%d_pre", i + 1) : out;
	const char *wn, *bn;
	w->rank[i + 1] = 4;
	switch (o->kind) {
	case FV_RT_CONV: {
		if (w->rank[o->in0] != 4)
			return fv_err_set(FV_E_UNSUPPORTED, "onnx: op %d: a convolution of a flat value", i);
		params(w, i, &wn, &bn);
		Onnx__NodeProto *n = node(w, "Conv", pre, in, wn, bn, NULL);
		attr_ints(w, n, "kernel_shape", o->k, o->k, 0);
		attr_ints(w, n, "strides", o->stride, o->stride, 0);
		attr_ints(w, n, "dilations", o->dil, o->dil, 0);
		attr_ints(w, n, "pads", o->pad, o->pad, 1);
		attr_i(w, n, "group", o->groups);
		break;
	}
	case FV_RT_LINEAR: {
		params(w, i, &wn, &bn);
		const char *flat = str(w, "v%d_flat", i + 1);
		attr_i(w, node(w, "Flatten", flat, in, NULL), "axis", 1);
		attr_i(w, node(w, "Gemm", pre, flat, wn, bn, NULL), "transB", 1);
		w->rank[i + 1] = 2;
		break;
	}
	case FV_RT_ADD:
		node(w, "Add", pre, in, vname(w, w, o->in1), NULL);
		w->rank[i + 1] = w->rank[o->in0];
		break;
	case FV_RT_MAXPOOL:
	case FV_RT_AVGPOOL: {
		Onnx__NodeProto *n = node(w, o->kind == FV_RT_MAXPOOL ? "MaxPool" : "AveragePool", pre, in, NULL);
		attr_ints(w, n, "kernel_shape", o->k, o->k, 0);
		attr_ints(w, n, "strides", o->stride, o->stride, 0);
		attr_ints(w, n, "pads", o->pad, o->pad, 1);
		if (o->kind == FV_RT_AVGPOOL)
			attr_i(w, n, "count_include_pad", 1);
		break;
	}
	case FV_RT_GAP:
		node(w, "GlobalAveragePool", pre, in, NULL);
		break;
	case FV_RT_ACT:
		activation(w, (int)o->act, in, out);
		w->rank[i + 1] = w->rank[o->in0];
		break;
	case FV_RT_SCALE:
		node(w, "Mul", pre, in, vname(w, w, o->in1), NULL);
		break;
	default:
		return fv_err_set(FV_E_UNSUPPORTED, "onnx: op %d of kind %d", i, (int)o->kind);
	}
	if (pre != out)
		activation(w, (int)o->act, pre, out);
	/* The logits of a GEMM are the float result itself (as in the runtime). */
	if (!(last && (o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR)))
		qdq(w, i + 1);
	if (last) {
		const char *v = (o->kind == FV_RT_CONV || o->kind == FV_RT_LINEAR) ? out : vname(w, w, i + 1);
		attr_i(w, node(w, "Flatten", "logits", v, NULL), "axis", 1);
	}
	return 0;
}

static Onnx__ValueInfoProto *vinfo(ow *w, const char *name, int n, const int64_t *dims)
{
	Onnx__ValueInfoProto *v = al(w, sizeof *v);
	onnx__value_info_proto__init(v);
	v->name = (char *)name;
	Onnx__TypeProto *t = al(w, sizeof *t);
	onnx__type_proto__init(t);
	Onnx__TypeProto__Tensor *tt = al(w, sizeof *tt);
	onnx__type_proto__tensor__init(tt);
	tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	Onnx__TensorShapeProto *s = al(w, sizeof *s);
	onnx__tensor_shape_proto__init(s);
	s->n_dim = (size_t)n;
	s->dim = al(w, sizeof *s->dim * (size_t)n);
	for (int i = 0; i < n; i++) {
		Onnx__TensorShapeProto__Dimension *d = al(w, sizeof *d);
		onnx__tensor_shape_proto__dimension__init(d);
		if (i == 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = "batch";
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		}
		s->dim[i] = d;
	}
	tt->shape = s;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->type = t;
	return v;
}

/* The class names as a JSON array. */
static char *names_json(ow *w)
{
	size_t cap = 16;
	for (int i = 0; i < w->m->classes; i++)
		cap += 2 * (w->m->names ? strlen(w->m->names[i]) : 12) + 4;
	char *s = al(w, cap), *p = s;
	*p++ = '[';
	for (int i = 0; i < w->m->classes; i++) {
		char num[16];
		snprintf(num, sizeof num, "%d", i);
		const char *n = w->m->names ? w->m->names[i] : num;
		*p++ = '"';
		for (; *n; n++) {
			if (*n == '"' || *n == '\\')
				*p++ = '\\';
			*p++ = (unsigned char)*n < 0x20 ? ' ' : *n;
		}
		*p++ = '"';
		if (i + 1 < w->m->classes)
			*p++ = ',';
	}
	*p++ = ']';
	return s;
}

static Onnx__StringStringEntryProto *meta(ow *w, const char *k, char *v)
{
	Onnx__StringStringEntryProto *e = al(w, sizeof *e);
	onnx__string_string_entry_proto__init(e);
	e->key = (char *)k, e->value = v;
	return e;
}

static int build(ow *w, uint8_t **out, size_t *len)
{
	const fv_xmodel *m = w->m;
	int64_t C = m->in_c;
	float mean[3], sd[3];
	for (int c = 0; c < m->in_c; c++)
		mean[c] = m->mean[c], sd[c] = m->std[c];
	int64_t nd[4] = { 1, C, 1, 1 };
	const char *mn = init(w, "mean", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, nd, mean, (size_t)C * 4);
	const char *sn = init(w, "std", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, nd, sd, (size_t)C * 4);
	node(w, "Sub", "centered", "pixels", mn, NULL);
	node(w, "Div", "v0", "centered", sn, NULL);
	w->rank[0] = 4;
	qdq(w, 0);
	for (int i = 0; i < m->nops; i++) {
		int rc = op(w, i);
		if (rc)
			return rc;
	}
	Onnx__GraphProto *g = al(w, sizeof *g);
	onnx__graph_proto__init(g);
	g->name = "fovea";
	g->n_node = w->nn, g->node = w->nodes;
	g->n_initializer = w->ni, g->initializer = w->inits;
	int64_t idims[4] = { 0, m->in_c, m->in_h, m->in_w }, odims[2] = { 0, m->classes };
	g->n_input = 1, g->input = al(w, sizeof *g->input);
	g->input[0] = vinfo(w, "pixels", 4, idims);
	g->n_output = 1, g->output = al(w, sizeof *g->output);
	g->output[0] = vinfo(w, "logits", 2, odims);
	Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
	mp.has_ir_version = 1, mp.ir_version = 7;
	mp.producer_name = "fovea", mp.producer_version = "1";
	mp.graph = g;
	Onnx__OperatorSetIdProto *ops = al(w, sizeof *ops);
	onnx__operator_set_id_proto__init(ops);
	ops->domain = "", ops->has_version = 1, ops->version = 13;
	mp.n_opset_import = 1, mp.opset_import = &ops;
	Onnx__StringStringEntryProto *md[6];
	md[0] = meta(w, "class_names", names_json(w));
	md[1] = meta(w, "mean", str(w, "%g,%g,%g", m->mean[0], m->mean[1], m->mean[2]));
	md[2] = meta(w, "std", str(w, "%g,%g,%g", m->std[0], m->std[1], m->std[2]));
	md[3] = meta(w, "resize_shorter", str(w, "%d", m->resize_shorter));
	md[4] = meta(w, "input", str(w, "float32 NCHW raw pixels 0..255, %dx%dx%d after the eval geometry",
				     m->in_c, m->in_h, m->in_w));
	md[5] = meta(w, "quantization", w->int8 ? "QDQ: activations uint8 per tensor, weights int8 "
					      "per output channel in [-63, 63], biases int32" : "none (fp32)");
	mp.n_metadata_props = 6, mp.metadata_props = md;
	size_t n = onnx__model_proto__get_packed_size(&mp);
	*out = malloc(n);
	if (!*out)
		return ENOMEM;
	*len = onnx__model_proto__pack(&mp, *out);
	return 0;
}

int fv_onnx_serialize(const fv_xmodel *m, int int8, uint8_t **buf, size_t *len)
{
	*buf = NULL, *len = 0;
	if (int8 && !m->quantized)
		return fv_err_set(EINVAL, "onnx: the model is not quantized");
	ow w = { .m = m, .int8 = int8 };
	int rc;
	w.rank = calloc((size_t)m->nops + 1, sizeof *w.rank);
	if (!w.rank)
		return ENOMEM;
	if (setjmp(w.oom))
		rc = ENOMEM;
	else
		rc = build(&w, buf, len);
	for (size_t i = 0; i < w.nmem; i++)
		free(w.mem[i]);
	free(w.mem);
	free(w.nodes);
	free(w.inits);
	free(w.rank);
	return rc;
}

int fv_onnx_write(const fv_xmodel *m, int int8, const char *path, size_t *len)
{
	uint8_t *buf;
	size_t n;
	int rc = fv_onnx_serialize(m, int8, &buf, &n);
	if (rc)
		return rc;
	FILE *f = fopen(path, "wb");
	if (!f) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
	} else {
		if (fwrite(buf, 1, n, f) != n || fflush(f) || fsync(fileno(f)))
			rc = fv_err_set(errno ? errno : EIO, "%s: write: %s", path, strerror(errno));
		if (fclose(f) && !rc)
			rc = fv_err_set(errno, "%s: close: %s", path, strerror(errno));
	}
	if (len)
		*len = n;
	free(buf);
	return rc;
}
