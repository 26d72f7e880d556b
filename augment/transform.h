/* augment/transform.h — the per-sample transforms an augment worker applies.
 * The output for a sample is a pure function of (input bytes, params, seed):
 * bit-identical across runs, threads, workers and hosts.
 *
 * Train: RandomResizedCrop (or pad-and-random-crop for small images), flip,
 * ColorJitter, PCA lighting, random erasing. Eval: resize shorter side then
 * center crop, or identity. Both end in per-channel normalization into
 * float32/float16 NCHW, or raw uint8 NHWC. JPEGs are decoded only as far as
 * the crop needs (region decode, DCT scaling), then one resampling pass
 * straight to the output size with flip/jitter/normalize fused in.
 *
 * Choices where torchvision leaves one: pad > 0 takes precedence over rrc
 * and pads with zeros; ColorJitter applies its ops in a random order per
 * sample (torchvision's); random erasing writes 0 after normalization (the
 * mean pixel in u8 layouts); gray input feeds 3 channels by replication, 3
 * channels feed gray output by luma (0.299, 0.587, 0.114; for JPEG, the Y
 * plane), and saturation/hue/lighting do nothing on 1 channel. Resampling is
 * PIL's antialiased bilinear. Random draws come from per-stage splitmix64
 * streams of the seed, so one op's setting never shifts another's draws. */
#ifndef FV_TRANSFORM_H
#define FV_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

enum fv_aug_mode { FV_AUG_TRAIN, FV_AUG_EVAL };
enum fv_aug_layout { FV_OUT_F32_NCHW, FV_OUT_F16_NCHW, FV_OUT_U8_NHWC };
enum fv_aug_encoding { FV_ENC_RAW, FV_ENC_JPEG, FV_ENC_PNG }; /* = fovea.Encoding */

typedef struct fv_aug_params {
	enum fv_aug_mode mode;
	int out_w, out_h, out_c;        /* out_c: 1 or 3 */
	enum fv_aug_layout layout;
	int rrc;                        /* RandomResizedCrop on */
	float scale_min, scale_max;     /* 0.08, 1 */
	float ratio_min, ratio_max;     /* 3/4, 4/3 */
	int pad;                        /* pad-and-random-crop; 0 = off */
	float flip_p;
	float brightness, contrast, saturation, hue;
	float pca_lighting;
	float erase_p, erase_scale_min, erase_scale_max, erase_ratio_min, erase_ratio_max;
	int resize_shorter;             /* eval: 0 = identity (small images) */
	float mean[3], std[3];          /* pixel units (0..255) */
} fv_aug_params;

typedef struct fv_aug_input {
	enum fv_aug_encoding encoding;
	const uint8_t *data;
	size_t len;
	int width, height, channels;    /* required for RAW (HWC uint8) */
} fv_aug_input;

/* ImageNet defaults for a mode and output size, torchvision's reference
 * recipe: RRC 0.08-1, ratio 3/4-4/3, flip 0.5, ImageNet mean/std, no
 * ColorJitter (opt in, e.g. 0.4/0.4/0.4 as fb.resnet.torch); eval resize
 * 256->224 scaled to the output size. */
void fv_aug_defaults(fv_aug_params *p, enum fv_aug_mode mode, int out_c, int out_h, int out_w);

/* Bytes one output sample takes in p's layout. */
size_t fv_aug_out_bytes(const fv_aug_params *p);

/* Reusable per-thread buffers so the hot path does not allocate. */
typedef struct fv_aug_scratch fv_aug_scratch;
int fv_aug_scratch_new(fv_aug_scratch **out);
void fv_aug_scratch_destroy(fv_aug_scratch **p);

/* Transform one sample into out (fv_aug_out_bytes(p) bytes). Returns 0, or
 * FV_E_DECODE / FV_E_FORMAT / FV_E_TOOBIG with a one-line reason in
 * fv_err_msg(); out is then left zeroed. Never crashes on bad bytes. */
int fv_aug_sample(const fv_aug_params *p, const fv_aug_input *in, uint64_t seed,
		  void *out, fv_aug_scratch *scratch);

/* The source box the geometry picks for a W x H image under p and seed, in
 * source pixels {x, y, w, h}: the RandomResizedCrop, the pad-crop window
 * (may start at negative offsets) or the eval center crop mapped back to the
 * source. For tests and tools; fv_aug_sample uses the same code. */
int fv_aug_crop_box(const fv_aug_params *p, int W, int H, uint64_t seed, double box[4]);

/* Validate params (sizes > 0, ranges ordered, probabilities in [0,1]). */
int fv_aug_params_check(const fv_aug_params *p);

#endif
