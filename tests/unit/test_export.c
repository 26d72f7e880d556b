/* test_export.c — folding and the .fovea runtime against the nn engine:
 * the folded FP32 model must give the unfolded net's logits (BN in
 * inference mode) within 1e-4; the INT8 model must track them; a .fovea
 * file must survive a write / mmap-read round trip and be refused, with
 * the right code, when damaged. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "exporter/kernels.h"
#include "exporter/runtime.h"
#include "exporter/xmodel.h"
#include "fv_test.h"
#include "nn/net.h"

#define B 6

/* A net with every op the exporter handles: conv/BN/ReLU/ReLU6 chains, a
 * residual add, stride-2 conv, max and average pooling, a depthwise conv,
 * squeeze-excitation (SiLU, sigmoid, scale), a BN nothing can absorb, GAP,
 * and a linear head. */
static fv_net *net_a(void)
{
	fv_net *n;
	if (fv_net_new(&n, 3, 12, 12))
		return NULL;
	int x = fv_net_conv(n, FV_NET_INPUT, "c1", 8, 3, 1, 1, 1, 1, 0);
	x = fv_net_act(n, fv_net_bn(n, x, "b1"), FV_ACT_RELU);
	int y = fv_net_conv(n, x, "c2", 8, 3, 1, 1, 1, 1, 0);
	y = fv_net_act(n, fv_net_bn(n, y, "b2"), FV_ACT_RELU6);
	y = fv_net_bn(n, fv_net_conv(n, y, "c3", 8, 3, 1, 1, 1, 1, 1), "b3");
	int z = fv_net_act(n, fv_net_add(n, x, y), FV_ACT_RELU);
	int s = fv_net_conv(n, z, "c4", 16, 3, 2, 1, 1, 1, 0);
	s = fv_net_act(n, fv_net_bn(n, s, "b4"), FV_ACT_RELU);
	s = fv_net_avgpool(n, fv_net_maxpool(n, s, 2, 2, 0), 3, 1, 1);
	int d = fv_net_conv(n, s, "dw", 16, 3, 1, 1, 1, 16, 0);
	d = fv_net_act(n, fv_net_bn(n, d, "b5"), FV_ACT_RELU);
	int g = fv_net_act(n, fv_net_conv(n, fv_net_gap(n, d), "se1", 4, 1, 1, 0, 1, 1, 1), FV_ACT_SILU);
	g = fv_net_act(n, fv_net_conv(n, g, "se2", 16, 1, 1, 0, 1, 1, 1), FV_ACT_SIGMOID);
	d = fv_net_scale(n, d, g);
	int t = fv_net_bn(n, fv_net_add(n, s, d), "b6");
	t = fv_net_linear(n, fv_net_flatten(n, fv_net_gap(n, t)), "fc", 10);
	if (t < 0 || fv_net_set_output(n, t)) {
		fv_net_destroy(&n);
		return NULL;
	}
	return n;
}

/* A linear layer reading a flattened 4x4 map (the HWC permutation), a BN
 * after a linear layer, dropout. */
static fv_net *net_b(void)
{
	fv_net *n;
	if (fv_net_new(&n, 1, 6, 6))
		return NULL;
	int x = fv_net_act(n, fv_net_conv(n, FV_NET_INPUT, "c", 5, 3, 1, 0, 1, 1, 1), FV_ACT_RELU);
	x = fv_net_linear(n, fv_net_flatten(n, x), "fc1", 12);
	x = fv_net_act(n, fv_net_bn(n, x, "bn"), FV_ACT_RELU);
	x = fv_net_linear(n, fv_net_dropout(n, x, 0.5f), "fc2", 7);
	if (x < 0 || fv_net_set_output(n, x)) {
		fv_net_destroy(&n);
		return NULL;
	}
	return n;
}

/* Compile, give BN non-trivial statistics, and return its param pointers. */
static const float **prepare(fv_net *n)
{
	fv_net_opts o = { .batch = B, .threads = 1, .inference_only = 1, .seed = 7 };
	if (fv_net_compile(n, &o))
		return NULL;
	size_t np = fv_net_nparams(n);
	fv_param *p = fv_net_params(n);
	const float **pd = malloc(sizeof *pd * np);
	for (size_t i = 0; i < np; i++) {
		pd[i] = p[i].data;
		for (size_t j = 0; j < p[i].numel; j++) {
			double u = fv_test_uniform();
			if (p[i].kind == FV_PARAM_BN_SCALE)
				p[i].data[j] = (float)(0.5 + u);
			else if (p[i].kind == FV_PARAM_BN_SHIFT || p[i].kind == FV_PARAM_BIAS)
				p[i].data[j] = (float)(u - 0.5);
			else if (p[i].kind == FV_PARAM_BUFFER && strstr(p[i].name, "running_var"))
				p[i].data[j] = (float)(0.2 + 2 * u);
			else if (p[i].kind == FV_PARAM_BUFFER)
				p[i].data[j] = (float)(u - 0.5);
		}
	}
	fv_net_sync_to_device(n);
	return pd;
}

static float *inputs(int c, int h, int w)
{
	size_t cnt = (size_t)B * c * h * w;
	float *x = malloc(sizeof *x * cnt);
	for (size_t i = 0; i < cnt; i++)
		x[i] = (float)(fv_test_uniform() * 2 - 1);
	return x;
}

static double fold_diff(fv_net *n, int c, int h, int w)
{
	const float **pd = prepare(n);
	if (!pd)
		return 1e9;
	float *x = inputs(c, h, w);
	int K = fv_net_classes(n);
	fv_net_forward(n, x, B, 0);
	const float *ref = fv_net_logits(n);
	fv_xmodel *m = NULL;
	fv_rt *rt = NULL;
	void *buf = NULL;
	size_t len;
	double worst = 1e9;
	float *got = calloc((size_t)B * K, sizeof *got);
	if (fv_fold(n, pd, &m) || fv_xmodel_serialize(m, 0, &buf, &len) || fv_rt_open_mem(&rt, buf, len))
		goto out;
	fv_rt_run(rt, x, B, got);
	worst = 0;
	for (int i = 0; i < B * K; i++) {
		double d = fabs(got[i] - ref[i]) / (1 + fabs(ref[i]));
		worst = d > worst ? d : worst;
	}
out:
	fv_rt_close(&rt);
	fv_xmodel_destroy(&m);
	free(buf), free(got), free(x), free(pd);
	return worst;
}

FV_TEST(folded_fp32_equals_unfolded_forward)
{
	fv_net *a = net_a(), *b = net_b();
	FV_CHECK(a && b);
	if (!a || !b)
		return;
	double da = fold_diff(a, 3, 12, 12), db = fold_diff(b, 1, 6, 6);
	FV_CHECK_MSG(da < 1e-4, "net a: worst relative logit difference %g", da);
	FV_CHECK_MSG(db < 1e-4, "net b: worst relative logit difference %g", db);
	fv_net_destroy(&a);
	fv_net_destroy(&b);
}

FV_TEST(folding_removes_bn_and_fuses_relu)
{
	fv_net *a = net_a();
	const float **pd = prepare(a);
	fv_xmodel *m = NULL;
	FV_CHECK_OK(fv_fold(a, pd, &m));
	int convs = 0, acts = 0, adds_relu = 0;
	for (int i = 0; m && i < m->nops; i++) {
		convs += m->ops[i].kind == FV_RT_CONV;
		acts += m->ops[i].kind == FV_RT_ACT;
		adds_relu += m->ops[i].kind == FV_RT_ADD && m->ops[i].act == FV_RT_RELU;
	}
	/* 7 convs + one depthwise 1x1 for the BN after the second add. */
	FV_CHECK_EQ(convs, 8);
	FV_CHECK_EQ(acts, 2); /* SiLU and sigmoid stay ops; every ReLU is fused */
	FV_CHECK_EQ(adds_relu, 1);
	fv_xmodel_destroy(&m);
	free(pd);
	fv_net_destroy(&a);
}

/* Fold, quantize with min-max ranges from the inputs, and return the model. */
static fv_xmodel *quantized(fv_net *n, const float *x, float **fp32_logits)
{
	const float **pd = prepare(n);
	fv_xmodel *m = NULL;
	fv_calib *c = NULL;
	fv_rt *rt = NULL;
	void *buf = NULL;
	size_t len;
	float *lo = NULL, *hi = NULL;
	if (fv_fold(n, pd, &m) || fv_xmodel_serialize(m, 0, &buf, &len) || fv_rt_open_mem(&rt, buf, len) ||
	    fv_calib_new(&c, m))
		goto fail;
	for (int pass = 0; pass < 2; pass++) {
		fv_calib_pass(c, rt, x, B);
		fv_calib_next(c);
	}
	lo = malloc(sizeof *lo * (size_t)(m->nops + 1));
	hi = malloc(sizeof *hi * (size_t)(m->nops + 1));
	fv_calib_ranges(c, FV_CALIB_MINMAX, 100, lo, hi);
	*fp32_logits = malloc(sizeof(float) * B * (size_t)m->classes);
	fv_rt_run(rt, x, B, *fp32_logits);
	if (fv_quant_weights(m) || fv_quant_apply(m, lo, hi))
		goto fail;
	goto out;
fail:
	fv_xmodel_destroy(&m);
out:
	fv_calib_destroy(&c);
	fv_rt_close(&rt);
	free(buf), free(lo), free(hi), free(pd);
	return m;
}

FV_TEST(fovea_round_trip_through_mmap)
{
	fv_net *a = net_a();
	float *x = inputs(3, 12, 12), *f32 = NULL;
	for (int i = 0; i < B * 3 * 144; i++)
		x[i] = (float)(fv_test_rand() % 256); /* raw pixels */
	fv_xmodel *m = quantized(a, x, &f32);
	FV_CHECK(m != NULL);
	if (!m)
		return;
	m->mean[0] = 120, m->std[0] = 60; /* exercised, not identity */
	m->mean[1] = m->mean[2] = 128, m->std[1] = m->std[2] = 64;
	m->names = calloc(10, sizeof *m->names);
	for (int i = 0; i < 10; i++) {
		char s[32];
		snprintf(s, sizeof s, "class-%d", i);
		m->names[i] = strdup(s);
	}
	char path[512];
	for (int int8 = 0; int8 < 2; int8++) {
		snprintf(path, sizeof path, "%s/m%d.fovea", fv_test_tmpdir(), int8);
		size_t len;
		void *buf;
		FV_CHECK_OK(fv_xmodel_write(m, int8, path, &len));
		FV_CHECK_OK(fv_xmodel_serialize(m, int8, &buf, &len));
		fv_rt *rf = NULL, *rm = NULL;
		FV_CHECK_OK(fv_rt_open(&rf, path));
		FV_CHECK_OK(fv_rt_open_mem(&rm, buf, len));
		if (!rf || !rm)
			return;
		const fv_rt_info *in = fv_rt_info_get(rf);
		FV_CHECK_EQ(in->dtype, int8 ? FV_RT_INT8 : FV_RT_FP32);
		FV_CHECK_EQ(in->classes, 10);
		FV_CHECK_EQ(in->in_c * 10000 + in->in_h * 100 + in->in_w, 31212);
		FV_CHECK(!strcmp(in->class_names[9], "class-9"));
		FV_CHECK_NEAR(in->mean[0], 120, 0);
		float a1[B * 10], a2[B * 10];
		fv_rt_set_threads(rf, 2);
		FV_CHECK_OK(fv_rt_run(rf, x, B, a1));
		FV_CHECK_OK(fv_rt_run(rm, x, B, a2));
		FV_CHECK(!memcmp(a1, a2, sizeof a1)); /* threads and mmap change nothing */
		/* The uint8 NHWC entry point agrees with the float NCHW one. */
		uint8_t u8[B * 3 * 144];
		for (int j = 0; j < B; j++)
			for (int p = 0; p < 144; p++)
				for (int ch = 0; ch < 3; ch++)
					u8[(j * 144 + p) * 3 + ch] = (uint8_t)x[(j * 3 + ch) * 144 + p];
		FV_CHECK_OK(fv_rt_run_u8(rm, u8, B, a2));
		FV_CHECK(!memcmp(a1, a2, sizeof a1));
		fv_rt_close(&rf);
		fv_rt_close(&rm);
		free(buf);
	}
	fv_xmodel_destroy(&m);
	free(x), free(f32);
	fv_net_destroy(&a);
}

FV_TEST(int8_tracks_fp32)
{
	fv_net *a = net_b();
	float *x = inputs(1, 6, 6), *f32 = NULL;
	for (int i = 0; i < B * 36; i++)
		x[i] = (float)(fv_test_rand() % 256); /* raw pixels: the input range is 0..255 */
	fv_xmodel *m = quantized(a, x, &f32);
	FV_CHECK(m != NULL);
	if (!m)
		return;
	void *buf;
	size_t len;
	fv_rt *rt = NULL;
	FV_CHECK_OK(fv_xmodel_serialize(m, 1, &buf, &len));
	FV_CHECK_OK(fv_rt_open_mem(&rt, buf, len));
	float q[B * 7];
	fv_rt_run(rt, x, B, q);
	double err = 0, mag = 0;
	for (int i = 0; i < B * 7; i++)
		err += fabs(q[i] - f32[i]), mag += fabs(f32[i]);
	FV_CHECK_MSG(err < 0.05 * mag, "INT8 logits off by %g of %g", err, mag);
	if (getenv("FV_TEST_VERBOSE"))
		fprintf(stderr, "int8 vs fp32: mean abs diff %g of %g\n", err, mag);
	fv_rt_close(&rt);
	free(buf);
	fv_xmodel_destroy(&m);
	free(x), free(f32);
	fv_net_destroy(&a);
}

static void recrc(uint8_t *b, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0, b, (uInt)(len - 4));
	memcpy(b + len - 4, &crc, 4);
}

FV_TEST(damaged_fovea_files_are_refused)
{
	fv_net *a = net_b();
	const float **pd = prepare(a);
	fv_xmodel *m = NULL;
	void *buf;
	size_t len;
	FV_CHECK_OK(fv_fold(a, pd, &m));
	FV_CHECK_OK(fv_xmodel_serialize(m, 0, &buf, &len));
	uint8_t *b = buf, *c = NULL;
	FV_CHECK(!posix_memalign((void **)&c, 64, len));
	fv_rt *rt = NULL;
	fv_fovea_hdr *h = (fv_fovea_hdr *)c;
	fv_fovea_op *ops = (fv_fovea_op *)(c + ((fv_fovea_hdr *)b)->ops_off);
#define TRY(want, ...) do { memcpy(c, b, len); __VA_ARGS__; \
	FV_CHECK_EQ(fv_rt_open_mem(&rt, c, len), want); FV_CHECK(rt == NULL); } while (0)
	memcpy(c, b, len);
	FV_CHECK_OK(fv_rt_open_mem(&rt, c, len));
	fv_rt_close(&rt);
	TRY(FV_E_FORMAT, c[0] = 'X');
	TRY(FV_E_CORRUPT, c[len / 2] ^= 0x40);                   /* a flipped bit */
	TRY(FV_E_CORRUPT, h->file_size = len + 64; recrc(c, len)); /* "truncated" */
	TRY(FV_E_UNSUPPORTED, h->version = 99; recrc(c, len));
	/* CRC-valid but inconsistent: the runtime checks structure too. */
	TRY(FV_E_CORRUPT, ops[0].K += 1; recrc(c, len));
	TRY(FV_E_CORRUPT, ops[0].w_off = h->data_len; recrc(c, len));
	TRY(FV_E_CORRUPT, ops[1].in0 = 5; recrc(c, len));
	TRY(FV_E_CORRUPT, ops[0].kind = 77; recrc(c, len));
	TRY(FV_E_CORRUPT, h->nops = 1; recrc(c, len)); /* output is not classes wide */
	TRY(FV_E_CORRUPT, h->names_len = 3; recrc(c, len));
#undef TRY
	/* Truncated on disk. */
	char path[512];
	snprintf(path, sizeof path, "%s/t.fovea", fv_test_tmpdir());
	FILE *f = fopen(path, "wb");
	fwrite(b, 1, len - 100, f);
	fclose(f);
	FV_CHECK_EQ(fv_rt_open(&rt, path), FV_E_CORRUPT);
	FV_CHECK_EQ(fv_rt_open(&rt, "/nonexistent/x.fovea"), ENOENT);
	free(c), free(buf), free(pd);
	fv_xmodel_destroy(&m);
	fv_net_destroy(&a);
}

FV_TEST(random_header_and_op_damage_never_crashes)
{
	/* Flip bytes in the header and op table, fix the checksum so the
	 * structural checks are what stand guard, and run whatever still opens:
	 * nothing may crash or read out of bounds (run under ASan in CI). */
	fv_net *a = net_a();
	float *x = inputs(3, 12, 12), *f32 = NULL;
	for (int i = 0; i < B * 3 * 144; i++)
		x[i] = (float)(fv_test_rand() % 256);
	fv_xmodel *m = quantized(a, x, &f32);
	FV_CHECK(m != NULL);
	if (!m)
		return;
	for (int int8 = 0; int8 < 2; int8++) {
		void *buf;
		size_t len;
		FV_CHECK_OK(fv_xmodel_serialize(m, int8, &buf, &len));
		const fv_fovea_hdr *h0 = buf;
		size_t span = h0->ops_off + (size_t)h0->nops * sizeof(fv_fovea_op);
		uint8_t *c = NULL;
		FV_CHECK(!posix_memalign((void **)&c, 64, len));
		int opened = 0;
		for (int it = 0; it < 400; it++) {
			memcpy(c, buf, len);
			for (int k = 0; k < 1 + (int)(fv_test_rand() % 3); k++) {
				size_t at = fv_test_rand() % span;
				if (at >= 8 && at < 24)
					continue; /* version, dtype and size: covered by the test above */
				c[at] = (uint8_t)(fv_test_rand() & 255);
			}
			recrc(c, len);
			fv_rt *rt = NULL;
			if (fv_rt_open_mem(&rt, c, len) == 0) {
				/* A valid file may ask for a huge input; that is memory, not a bug. */
				const fv_fovea_hdr *h = (const fv_fovea_hdr *)c;
				if (h->in_c == h0->in_c && h->in_h == h0->in_h && h->in_w == h0->in_w &&
				    h->classes == h0->classes) {
					float out[2 * 10];
					fv_rt_run(rt, x, 2, out);
				}
				fv_rt_close(&rt);
				opened++;
			}
		}
		FV_CHECK(opened < 400); /* most damage is caught */
		free(c);
		free(buf);
	}
	fv_xmodel_destroy(&m);
	free(x), free(f32);
	fv_net_destroy(&a);
}
