/* nn/cuda/input.cu — the uint8 input path (pinned buffers, a copy stream,
 * events, normalisation on the GPU) and softmax cross-entropy on device
 * logits. See nn/cuda/fv_cuda.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "fv_error.h"
}
#include "nn/cuda/cuda.h"
extern "C" {
#include "nn/cuda/fv_cuda.h"
}
#include "nn/cuda/ops.h"

extern "C" const fv_backend fv_backend_cuda;

enum { MAXC = 16, MAXSLOT = 4 };

struct fv_cuda_input {
	fv_backend_ctx *ctx;
	const fv_tensor *x;      /* the net's input tensor (plain fp32 NCHW) */
	int slots, n[MAXSLOT];
	size_t bytes;            /* per slot */
	uint8_t *host[MAXSLOT];  /* pinned */
	uint8_t *dev[MAXSLOT];
	cudaStream_t copy;
	cudaEvent_t copied[MAXSLOT], used[MAXSLOT];
	float *norm;             /* device: C scales then C offsets */
};

static int ctx_of(fv_net *net, fv_backend_ctx **ctx)
{
	fv_net_dev d;
	int rc = fv_net_device(net, &d, 0);
	if (!rc && d.be != &fv_backend_cuda)
		rc = fv_err_set(FV_E_UNSUPPORTED, "cuda: the net runs on the %s backend", d.be->name);
	*ctx = rc ? NULL : d.ctx;
	return rc;
}

extern "C" void fv_cuda_input_destroy(fv_cuda_input **p)
{
	if (!p || !*p)
		return;
	fv_cuda_input *in = *p;
	if (in->copy)
		cudaStreamSynchronize(in->copy);
	for (int i = 0; i < MAXSLOT; i++) {
		cudaFreeHost(in->host[i]);
		cudaFree(in->dev[i]);
		if (in->copied[i]) cudaEventDestroy(in->copied[i]);
		if (in->used[i]) cudaEventDestroy(in->used[i]);
	}
	cudaFree(in->norm);
	if (in->copy)
		cudaStreamDestroy(in->copy);
	free(in);
	*p = NULL;
}

extern "C" int fv_cuda_input_new(fv_cuda_input **out, fv_net *net, int slots, const float *mean,
				 const float *std)
{
	*out = NULL;
	fv_backend_ctx *ctx;
	int rc = ctx_of(net, &ctx);
	if (rc)
		return rc;
	const fv_tensor *x = fv_net_input(net);
	if (slots < 1 || slots > MAXSLOT || x->c > MAXC || x->fmt != FV_FMT_PLAIN)
		return fv_err_set(FV_E_UNSUPPORTED, "cuda input: %d slots of %d channels", slots, x->c);
	fv_cuda_input *in = (fv_cuda_input *)calloc(1, sizeof *in);
	if (!in)
		return ENOMEM;
	in->ctx = ctx, in->x = x, in->slots = slots;
	in->bytes = (size_t)x->n * x->c * x->h * x->w;
	float hn[2 * MAXC];
	for (int c = 0; c < x->c; c++) {
		float s = std ? std[c] : 255.0f, m = mean ? mean[c] : 0.0f;
		hn[c] = 1.0f / s;
		hn[x->c + c] = -m / s;
	}
	rc = fv_cu_check(cudaStreamCreateWithFlags(&in->copy, cudaStreamNonBlocking), "stream");
	for (int i = 0; i < slots && !rc; i++) {
		rc = fv_cu_check(cudaMallocHost((void **)&in->host[i], in->bytes), "pinned alloc");
		if (!rc)
			rc = fv_cu_alloc((void **)&in->dev[i], in->bytes);
		if (!rc)
			rc = fv_cu_check(cudaEventCreateWithFlags(&in->copied[i],
						cudaEventDisableTiming), "event");
		if (!rc)
			rc = fv_cu_check(cudaEventCreateWithFlags(&in->used[i],
						cudaEventDisableTiming), "event");
	}
	if (!rc)
		rc = fv_cu_alloc((void **)&in->norm, sizeof hn);
	if (!rc)
		rc = fv_cuda_to_device(ctx, in->norm, hn, 2 * x->c * sizeof(float));
	if (rc)
		fv_cuda_input_destroy(&in);
	*out = in;
	return rc;
}

extern "C" uint8_t *fv_cuda_input_buffer(fv_cuda_input *in, int slot)
{
	if (slot < 0 || slot >= in->slots)
		return NULL;
	cudaEventSynchronize(in->copied[slot]); /* the host may overwrite it now */
	return in->host[slot];
}

extern "C" int fv_cuda_input_submit(fv_cuda_input *in, int slot, int n)
{
	if (slot < 0 || slot >= in->slots || n < 1 || n > in->x->n)
		return fv_err_set(FV_E_CONFIG, "cuda input: slot %d, %d images", slot, n);
	size_t b = in->bytes / in->x->n * n;
	in->n[slot] = n;
	/* the device buffer is free once the last normalise of this slot ran */
	int rc = fv_cu_check(cudaStreamWaitEvent(in->copy, in->used[slot], 0), "wait");
	if (!rc)
		rc = fv_cu_check(cudaMemcpyAsync(in->dev[slot], in->host[slot], b,
						 cudaMemcpyHostToDevice, in->copy), "input copy");
	if (!rc)
		rc = fv_cu_check(cudaEventRecord(in->copied[slot], in->copy), "record");
	return rc;
}

/* u8 NHWC -> fp32 NCHW, y = x * scale[c] + off[c]. */
__global__ void k_norm(float *y, const uint8_t *x, const float *nm, int n, int c, int hw)
{
	size_t total = (size_t)n * c * hw;
	for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total;
	     o += (size_t)gridDim.x * blockDim.x) {
		size_t pos = o % hw, r = o / hw;
		int ch = (int)(r % c);
		size_t img = r / c;
		y[o] = x[(img * hw + pos) * c + ch] * nm[ch] + nm[c + ch];
	}
}

extern "C" int fv_cuda_input_load(fv_cuda_input *in, int slot)
{
	if (slot < 0 || slot >= in->slots || !in->n[slot])
		return fv_err_set(FV_E_CONFIG, "cuda input: slot %d was not submitted", slot);
	fv_backend_ctx *ctx = in->ctx;
	const fv_tensor *x = in->x;
	size_t total = (size_t)in->n[slot] * x->c * x->h * x->w;
	unsigned g = (unsigned)((total + 255) / 256 > 8192 ? 8192 : (total + 255) / 256);
	int rc = fv_cu_check(cudaStreamWaitEvent(ctx->strm, in->copied[slot], 0), "wait");
	if (rc)
		return rc;
	k_norm<<<g, 256, 0, ctx->strm>>>((float *)x->data, in->dev[slot], in->norm, in->n[slot],
					 x->c, x->h * x->w);
	rc = fv_cu_check(cudaGetLastError(), "normalise");
	return rc ? rc : fv_cu_check(cudaEventRecord(in->used[slot], ctx->strm), "record");
}

/* ---- softmax cross-entropy --------------------------------------------------- */

/* One block per sample: nn/loss.c's hard-label formula (see there). */
__global__ void k_xent(double *part, float *g, const float *z, const int *lab, const float *cw,
		       int k, float eps, float sw, float wsum)
{
	__shared__ float red[256];
	int i = blockIdx.x, y = lab[i];
	const float *zi = z + (size_t)i * k;
	float *gi = g + (size_t)i * k;
	float mx = -INFINITY;
	for (int c = threadIdx.x; c < k; c += blockDim.x)
		mx = fmaxf(mx, zi[c]);
	red[threadIdx.x] = mx;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
		__syncthreads();
	}
	mx = red[0];
	__syncthreads();
	float se = 0;
	for (int c = threadIdx.x; c < k; c += blockDim.x)
		se += expf(zi[c] - mx);
	red[threadIdx.x] = se;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			red[threadIdx.x] += red[threadIdx.x + s];
		__syncthreads();
	}
	float lse = mx + logf(red[0]);
	__syncthreads();
	float wy = cw ? cw[y] : 1.0f, acc = 0;
	for (int c = threadIdx.x; c < k; c += blockDim.x) {
		float lp = zi[c] - lse, p = expf(lp), wc = cw ? cw[c] : 1.0f;
		acc += wc * -lp;
		float gc = (1 - eps) * wy * p + eps / k * (sw * p - wc);
		if (c == y)
			gc -= (1 - eps) * wy;
		gi[c] = gc / wsum;
	}
	red[threadIdx.x] = acc;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			red[threadIdx.x] += red[threadIdx.x + s];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		part[i] = (double)(1 - eps) * wy * (lse - zi[y]) + (double)eps / k * red[0];
}

extern "C" int fv_cuda_xent(fv_net *net, float *loss, float *dlogits, const float *logits,
			    const int *labels, const float *cw, float smoothing, int n, int k)
{
	fv_backend_ctx *ctx;
	int rc = ctx_of(net, &ctx);
	if (rc)
		return rc;
	if (n < 1 || (size_t)n > ctx->part_n || k < 1 || !(smoothing >= 0 && smoothing < 1))
		return fv_err_set(FV_E_CONFIG, "cuda xent: n %d, k %d, smoothing %g", n, k, smoothing);
	double wsum = 0, sw = 0;
	for (int c = 0; c < k; c++)
		sw += cw ? cw[c] : 1.0;
	for (int i = 0; i < n; i++) {
		if (labels[i] < 0 || labels[i] >= k)
			return fv_err_set(FV_E_MISMATCH, "cuda xent: label %d of sample %d not in [0, %d)",
					  labels[i], i, k);
		wsum += cw ? cw[labels[i]] : 1.0;
	}
	if (!(wsum > 0))
		return fv_err_set(FV_E_CONFIG, "cuda xent: class weights of the batch sum to %g", wsum);
	/* labels then weights in the staging buffer */
	size_t b = n * sizeof(int) + (cw ? k * sizeof(float) : 0);
	rc = fv_cu_stage(ctx, b);
	if (!rc)
		rc = fv_cuda_to_device(ctx, ctx->stage, labels, n * sizeof(int));
	float *dcw = cw ? (float *)((char *)ctx->stage + n * sizeof(int)) : NULL;
	if (!rc && cw)
		rc = fv_cuda_to_device(ctx, dcw, cw, k * sizeof(float));
	if (rc)
		return rc;
	k_xent<<<n, 256, 0, ctx->strm>>>(ctx->part, dlogits, logits, (const int *)ctx->stage, dcw, k,
					 smoothing, (float)sw, (float)wsum);
	rc = fv_cu_check(cudaGetLastError(), "xent");
	if (!rc)
		rc = fv_cuda_to_host(ctx, ctx->hpart, ctx->part, n * sizeof(double));
	if (rc)
		return rc;
	double s = 0;
	for (int i = 0; i < n; i++)
		s += ctx->hpart[i];
	*loss = (float)(s / wsum);
	return 0;
}
