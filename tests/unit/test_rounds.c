/* test_rounds.c — continual retraining's pieces: the feed's subset mode
 * (an epoch plans exactly the keys given, each once), the durable round
 * state (resume after a crash mid-round, torn lines, no double counting)
 * and what `fovea-trainer rounds` / `fovea status` show from the verdicts. */
#include "fv_test.h"
#include "fv_store.h"
#include "fv_error.h"
#include "fv_daemon.h"
#include "trainer/feed.h"
#include "trainer/rounds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NREC = 40, SIDE = 8 };

static fv_store *make_store(uint64_t *keys)
{
	fv_store *s;
	static uint8_t d[NREC][SIDE * SIDE];
	fv_store_put p[NREC];
	const char *ids[] = { "a", "b" };
	char dir[600];
	snprintf(dir, sizeof dir, "%s/db", fv_test_tmpdir());
	FV_CHECK_OK(fv_store_open(dir, FV_STORE_CREATE | FV_STORE_NOSYNC, 0, &s));
	for (uint32_t i = 0; i < NREC; i++) {
		memset(&p[i], 0, sizeof p[i]);
		for (int k = 0; k < SIDE * SIDE; k++)
			d[i][k] = (uint8_t)(i * 13 + k);
		p[i].class_id = ids[i % 2];
		p[i].width = p[i].height = SIDE;
		p[i].channels = 1;
		memcpy(p[i].hash, &i, sizeof i);
		p[i].source = "unit";
		p[i].data = d[i];
		p[i].data_len = sizeof d[i];
	}
	fv_store_batch b = { .class_ids = ids, .nclasses = 2, .items = p, .n = NREC };
	FV_CHECK_OK(fv_store_commit(s, &b));
	for (int i = 0; i < NREC; i++)
		keys[i] = p[i].key;
	return s;
}

/* Run one epoch; count how often each key was delivered (trace lines). */
static size_t epoch_keys(fv_feed *f, uint64_t epoch, int *seen, const uint64_t *keys)
{
	char *buf = NULL;
	size_t len = 0, delivered = 0;
	FILE *t = open_memstream(&buf, &len);
	const void *x;
	const int *y;
	int n;
	fv_feed_trace(f, t);
	FV_CHECK_OK(fv_feed_epoch(f, epoch, 0, 0, NULL));
	while (!fv_feed_next(f, &x, &y, &n, NULL))
		delivered += (size_t)n;
	fv_feed_trace(f, NULL);
	fclose(t);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *p = line;
		strtoull(p, &p, 10);
		strtoull(p, &p, 10);
		for (char *e; *p; p = e) {
			uint64_t k = strtoull(p, &e, 10);
			if (e == p)
				break;
			for (int i = 0; i < NREC; i++)
				if (keys[i] == k)
					seen[i]++;
		}
	}
	free(buf);
	return delivered;
}

FV_TEST(feed_subset_plans_exactly_the_given_keys)
{
	uint64_t keys[NREC], sub[13];
	int seen[NREC] = { 0 };
	fv_store *s = make_store(keys);
	fv_augc_opts ao;
	fv_augc *c = NULL;
	char ep[700];
	snprintf(ep, sizeof ep, "ipc://%s/aug.sock", fv_test_tmpdir());
	fv_augc_opts_default(&ao);
	ao.endpoint = ep;
	ao.in_order = 1;
	FV_CHECK_OK(fv_augc_new(&c, &ao));
	FV_CHECK_OK(fv_augc_spawn_local(c, 1, 1));
	fv_feed_opts fo = { .split = 0, .batch = 4, .seed = 7, .order = FV_FEED_SHUFFLE, .drop_last = 1,
			    .classes = 2, .window = 2 };
	fv_aug_defaults(&fo.params, FV_AUG_EVAL, 1, SIDE, SIDE);
	fo.params.layout = FV_OUT_F32_NCHW;
	fv_feed *f;
	FV_CHECK_OK(fv_feed_new(&f, s, c, &fo));
	/* 12 keys of the split (every third from 1) and one it does not hold */
	for (int i = 0; i < 12; i++)
		sub[i] = keys[1 + 3 * i];
	sub[12] = keys[NREC - 1] + 1000;
	FV_CHECK_OK(fv_feed_set_subset(f, sub, 13));
	FV_CHECK_EQ(epoch_keys(f, 5, seen, keys), 12);
	FV_CHECK_EQ(fv_feed_records(f), 12);
	for (int i = 0; i < NREC; i++)
		FV_CHECK_EQ(seen[i], i % 3 == 1 && i < 36 ? 1 : 0);
	/* back to the whole split */
	memset(seen, 0, sizeof seen);
	FV_CHECK_OK(fv_feed_set_subset(f, NULL, 0));
	FV_CHECK_EQ(epoch_keys(f, 6, seen, keys), NREC);
	for (int i = 0; i < NREC; i++)
		FV_CHECK_EQ(seen[i], 1);
	fv_feed_destroy(&f);
	fv_augc_destroy(&c);
	fv_store_close(&s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[700];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	FV_CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

FV_TEST(round_state_resumes_without_double_counting)
{
	const char *d = fv_test_tmpdir();
	fv_rounds_state st;
	FV_CHECK_OK(fv_rounds_state_read(d, &st)); /* no file: fresh */
	FV_CHECK_EQ(st.have_base, 0);
	FV_CHECK_EQ(st.done, 0);
	write_file(d, "rounds.jsonl",
		   "{\"event\":\"base\",\"time\":1,\"key_bound\":100}\n"
		   "{\"event\":\"start\",\"round\":1,\"time\":2,\"from_key\":100,\"to_key\":250}\n"
		   "{\"event\":\"end\",\"round\":1,\"time\":3,\"from_key\":100,\"to_key\":250}\n"
		   "{\"event\":\"end\",\"round\":1,\"time\":4,\"from_key\":100,\"to_key\":999}\n"
		   "{\"event\":\"start\",\"round\":2,\"time\":5,\"from_key\":250,\"to_key\":400}\n");
	FV_CHECK_OK(fv_rounds_state_read(d, &st));
	FV_CHECK_EQ(st.have_base, 1);
	FV_CHECK_EQ(st.done, 1);
	FV_CHECK_EQ(st.bound, 250); /* the repeated end is out of sequence */
	FV_CHECK_EQ(st.pending, 1);  /* round 2 was interrupted: redo on the same records */
	FV_CHECK_EQ(st.pending_to, 400);
	/* a torn end line (crash mid-write) does not count */
	write_file(d, "rounds.jsonl",
		   "{\"event\":\"base\",\"time\":1,\"key_bound\":100}\n"
		   "{\"event\":\"start\",\"round\":1,\"time\":2,\"from_key\":100,\"to_key\":250}\n"
		   "{\"event\":\"end\",\"round\":1,\"time\":3,\"from_k");
	FV_CHECK_OK(fv_rounds_state_read(d, &st));
	FV_CHECK_EQ(st.done, 0);
	FV_CHECK_EQ(st.bound, 100);
	FV_CHECK_EQ(st.pending, 1);
}

FV_TEST(rounds_show_the_verdicts)
{
	const char *d = fv_test_tmpdir();
	char *buf = NULL;
	size_t len = 0;
	write_file(d, "rounds.jsonl",
		   "{\"event\":\"base\",\"time\":1,\"key_bound\":100}\n"
		   "{\"event\":\"start\",\"round\":1,\"time\":2,\"from_key\":100,\"to_key\":250,\"new\":150,\"replay\":75}\n"
		   "{\"event\":\"end\",\"round\":1,\"time\":3,\"from_key\":100,\"to_key\":250,\"new\":150,\"replay\":75,\"steps\":9,\"checkpoint\":\"c/ckpt-9.fvc\"}\n"
		   "{\"event\":\"start\",\"round\":2,\"time\":5,\"from_key\":250,\"to_key\":400,\"new\":150,\"replay\":75}\n");
	write_file(d, "verdicts.jsonl",
		   "{\"round\":0,\"checkpoint\":\"ckpt-5.fvc\",\"verdict\":\"replaced\",\"why\":\"first\"}\n"
		   "{\"round\":1,\"checkpoint\":\"ckpt-8.fvc\",\"verdict\":\"replaced\",\"why\":\"top-1 0.8 > 0.7\",\"top1\":0.8,\"champion_top1\":0.7}\n"
		   "{\"round\":1,\"checkpoint\":\"ckpt-9.fvc\",\"verdict\":\"kept\",\"why\":\"top-1 0.79 < 0.8\",\"top1\":0.79,\"champion_top1\":0.8}\n");
	FILE *f = open_memstream(&buf, &len);
	FV_CHECK_EQ(fv_rounds_show(d, FV_ROUNDS_JSONL, 0, f), 2);
	fclose(f);
	FV_CHECK(strstr(buf, "\"round\":1,") && strstr(buf, "\"state\":\"done\""));
	FV_CHECK(strstr(buf, "\"verdict\":\"replaced\",\"why\":\"top-1 0.8 > 0.7\",\"judged\":\"ckpt-8.fvc\""));
	FV_CHECK(strstr(buf, "\"round\":2,") && strstr(buf, "\"state\":\"training\""));
	FV_CHECK(strstr(buf, "\"verdict\":\"pending\""));
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	FV_CHECK_EQ(fv_rounds_show(d, FV_ROUNDS_TEXT, 1, f), 2); /* the last one only */
	fclose(f);
	FV_CHECK(!strncmp(buf, "round 2 ", 8) && !strstr(buf, "round 1 "));
	free(buf);
}
