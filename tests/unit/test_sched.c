/* Unit tests for nn/sched: each schedule at known points, warmup, SGDR
 * restarts, the text form and its errors, the linear scaling rule. */
#include "fv_test.h"
#include "fv_error.h"
#include "nn/sched.h"

#include <string.h>

static fv_sched parse(const char *text, double base, double epochs)
{
	fv_sched s;
	memset(&s, 0xff, sizeof s);
	FV_CHECK_OK(fv_sched_parse(&s, text, base, epochs));
	return s;
}

FV_TEST(sched_constant_step_multistep)
{
	fv_sched s = parse("constant", 0.1, 90);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0.1, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 89.5), 0.1, 1e-7);

	s = parse("step:30:0.1", 0.1, 90);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0.1, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 29.999), 0.1, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 3000.0 / 100), 0.01, 1e-8); /* step 3000 of 100/epoch */
	FV_CHECK_NEAR(fv_sched_lr(&s, 65), 0.001, 1e-9);

	s = parse("multistep:30,60,80:0.1", 0.1, 90);
	FV_CHECK_NEAR(fv_sched_lr(&s, 29.9), 0.1, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 30), 0.01, 1e-8);
	FV_CHECK_NEAR(fv_sched_lr(&s, 79.99), 0.001, 1e-9);
	FV_CHECK_NEAR(fv_sched_lr(&s, 80), 0.0001, 1e-10);
	FV_CHECK_EQ(s.nmilestones, 3);
}

FV_TEST(sched_cosine)
{
	fv_sched s = parse("cosine", 0.2, 100);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0.2, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 50), 0.1, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 25), 0.1 * (1 + cos(M_PI / 4)), 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 100), 0, 1e-9);
	FV_CHECK_NEAR(fv_sched_lr(&s, 120), 0, 1e-9);
	s = parse("cosine:0.002", 0.2, 100);
	FV_CHECK_NEAR(fv_sched_lr(&s, 50), 0.101, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 100), 0.002, 1e-9);
	/* monotone decreasing over the run */
	float prev = 1;
	for (int i = 0; i <= 1000; i++) {
		float lr = fv_sched_lr(&s, i * 0.1);
		FV_CHECK(lr <= prev);
		prev = lr;
	}
}

FV_TEST(sched_warmup_composes)
{
	fv_sched s = parse("cosine+warmup:5:0.01", 0.1, 100);
	fv_sched c = parse("cosine", 0.1, 100);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0.001, 1e-8);            /* start: base * 0.01 */
	FV_CHECK_NEAR(fv_sched_lr(&s, 2.5), fv_sched_lr(&c, 2.5) * 0.505, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 5), fv_sched_lr(&c, 5), 0);  /* end: the schedule itself */
	FV_CHECK_NEAR(fv_sched_lr(&s, 5 - 1e-7), fv_sched_lr(&c, 5), 1e-7); /* continuous */
	s = parse("step:30:0.1+warmup:2", 0.4, 90);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0.4 * FV_SCHED_WARMUP_FACTOR, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 1), 0.4 * 0.55, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 31), 0.04, 1e-8);
	s = parse("constant+warmup:3:0", 1.0, 10);
	FV_CHECK_NEAR(fv_sched_lr(&s, 0), 0, 0);
	FV_CHECK_NEAR(fv_sched_lr(&s, 1.5), 0.5, 1e-7);
}

FV_TEST(sched_sgdr_restarts)
{
	fv_sched s = parse("sgdr:10:2", 0.1, 200);
	/* cycles [0,10) [10,30) [30,70) [70,150) */
	const double starts[] = { 0, 10, 30, 70, 150 }, lens[] = { 10, 20, 40, 80, 160 };
	for (int i = 0; i < 5; i++) {
		FV_CHECK_NEAR(fv_sched_lr(&s, starts[i]), 0.1, 1e-7);
		FV_CHECK_NEAR(fv_sched_lr(&s, starts[i] + lens[i] / 2), 0.05, 1e-7);
		if (i)
			FV_CHECK(fv_sched_lr(&s, starts[i] - 1e-3) < 1e-6); /* just before a restart */
	}
	s = parse("sgdr:10:1:0.001", 0.1, 100);
	FV_CHECK_NEAR(fv_sched_lr(&s, 25), 0.0505, 1e-7);
	FV_CHECK_NEAR(fv_sched_lr(&s, 40), 0.1, 1e-7);
	s = parse("sgdr:5", 0.1, 100);
	FV_CHECK_NEAR(fv_sched_lr(&s, 7.5), 0.05, 1e-7);
}

FV_TEST(sched_parse_errors)
{
	static const char *bad[] = {
		"", "linear", "step", "step:30", "step:0:0.1", "step:30:0.1:5", "step:30:-1",
		"multistep", "multistep:30,20:0.1", "multistep::0.1", "multistep:30,60", "cosine:x",
		"cosine:0.5", "sgdr:0:2", "sgdr:10:0.5", "sgdr", "cosine+warmup", "cosine+warmup:5:2",
		"cosine+warmup:x", "step:nan:0.1", "cosine junk",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fv_sched s = { .kind = FV_SCHED_STEP, .gamma = 42 };
		int rc = fv_sched_parse(&s, bad[i], 0.1, 90);
		FV_CHECK_MSG(rc == FV_E_CONFIG, "\"%s\" -> %d", bad[i], rc);
		FV_CHECK_MSG(strstr(fv_err_msg(rc), "lr schedule") && strstr(fv_err_msg(rc), bad[i]),
			     "\"%s\": %s", bad[i], fv_err_msg(rc));
		FV_CHECK(s.gamma == 42); /* untouched */
	}
	fv_sched s;
	FV_CHECK_EQ(fv_sched_parse(&s, "cosine", 0.1, 0), FV_E_CONFIG); /* no run length */
}

FV_TEST(sched_format_round_trip)
{
	static const char *texts[] = { "constant", "step:30:0.1", "multistep:30,60,80:0.2",
				       "cosine:1e-05+warmup:5:0.01", "sgdr:10:2:0.0001" };
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		char buf[256];
		fv_sched a = parse(texts[i], 0.1, 90), b;
		fv_sched_format(&a, buf, sizeof buf);
		b = parse(buf, 0.1, 90);
		for (double e = 0; e < 90; e += 0.37)
			FV_CHECK_MSG(fv_sched_lr(&a, e) == fv_sched_lr(&b, e), "%s vs %s at %g",
				     texts[i], buf, e);
	}
}

FV_TEST(sched_linear_scaling)
{
	FV_CHECK_NEAR(fv_sched_scale_lr(0.1, 256), 0.1, 0);
	FV_CHECK_NEAR(fv_sched_scale_lr(0.1, 1024), 0.4, 1e-12);
	FV_CHECK_NEAR(fv_sched_scale_lr(0.1, 64), 0.025, 1e-12);
}
