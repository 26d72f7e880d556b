/* test_evaluator.c — the evaluator's durable state: the JSON writer and
 * reader, eval.jsonl append and recovery from a torn last line, champion
 * selection (ties) and the atomic champion files. */
#include "fv_test.h"
#include "evaluator/evaluator.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- JSON */

FV_TEST(json_writer_escapes_and_nests)
{
	fv_jsonw w;
	fv_jsonw_init(&w);
	fv_jsonw_obj(&w);
	fv_jsonw_key(&w, "s"), fv_jsonw_str(&w, "a\"b\\c\nd\x01");
	fv_jsonw_key(&w, "a");
	fv_jsonw_arr(&w);
	fv_jsonw_num(&w, 1.5);
	fv_jsonw_num(&w, NAN);
	fv_jsonw_arr(&w);
	fv_jsonw_arr_end(&w);
	fv_jsonw_u64(&w, 18446744073709551615ull);
	fv_jsonw_arr_end(&w);
	fv_jsonw_key(&w, "b"), fv_jsonw_bool(&w, 1);
	fv_jsonw_key(&w, "n"), fv_jsonw_null(&w);
	fv_jsonw_obj_end(&w);
	FV_CHECK_OK(fv_jsonw_status(&w));
	FV_CHECK_MSG(!strcmp(w.buf, "{\"s\": \"a\\\"b\\\\c\\nd\\u0001\", \"a\": [1.5, null, [], "
				    "18446744073709551615], \"b\": true, \"n\": null}"), "got %s", w.buf);
	FV_CHECK_OK(fv_jsonr_check(w.buf, w.len));
	char s[64];
	FV_CHECK_OK(fv_jsonr_str(w.buf, w.len, "s", s, sizeof s));
	FV_CHECK(!strcmp(s, "a\"b\\c\nd\x01"));
	double d;
	FV_CHECK_OK(fv_jsonr_num(w.buf, w.len, "n", &d));
	FV_CHECK(isnan(d));
	FV_CHECK_EQ(fv_jsonr_num(w.buf, w.len, "missing", &d), FV_E_NOTFOUND);
	/* "s" inside a string value is not a key */
	FV_CHECK_EQ(fv_jsonr_str(w.buf, w.len, "b\\c", s, sizeof s), FV_E_NOTFOUND);
	FV_CHECK_EQ(fv_jsonr_str(w.buf, w.len, "s", s, 4), ENAMETOOLONG);
	fv_jsonw_free(&w);
}

FV_TEST(json_reader_refuses_torn_and_garbage)
{
	const char *good = "{\"a\": [1, 2, {\"b\": -1.5e3}], \"c\": \"x\"}";
	FV_CHECK_OK(fv_jsonr_check(good, strlen(good)));
	/* every proper prefix of a complete object is refused */
	for (size_t n = 0; n < strlen(good); n++)
		FV_CHECK_MSG(fv_jsonr_check(good, n) != 0, "prefix %zu accepted", n);
	const char *bad[] = { "{\"a\" 1}", "{\"a\": 01x}", "[1,]", "{\"a\": tru}", "\"\\q\"",
			      "{} {}", "{\"a\": 1,}", "nul", "-", "1.", "\"a\x01\"" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		FV_CHECK_MSG(fv_jsonr_check(bad[i], strlen(bad[i])) != 0, "accepted %s", bad[i]);
	char deep[300];
	memset(deep, '[', 150);
	memset(deep + 150, ']', 150);
	FV_CHECK(fv_jsonr_check(deep, 300) != 0);
	double d;
	FV_CHECK_OK(fv_jsonr_num("{\"x\": -2.5e-1}", 14, "x", &d));
	FV_CHECK_NEAR(d, -0.25, 0);
}

/* ---------------------------------------------------------------- results */

static void result(fv_eval_result *r, const char *dir, uint64_t step, double top1, double loss)
{
	memset(r, 0, sizeof *r);
	snprintf(r->path, sizeof r->path, "%s/ckpt-%09llu.fvc", dir, (unsigned long long)step);
	snprintf(r->model, sizeof r->model, "resnet20");
	r->step = step;
	r->epoch = step / 10.0;
	r->n = 1000;
	r->top1 = top1;
	r->top5 = 0.99;
	r->loss = loss;
	r->ece = 0.05;
	r->classes = 3;
	r->per_class = calloc(3, sizeof *r->per_class);
	r->confusion = calloc(9, sizeof *r->confusion);
	r->per_class[0] = 0.5, r->per_class[1] = NAN, r->per_class[2] = 1;
	r->confusion[0] = 5, r->confusion[4] = 7;
}

FV_TEST(result_json_round_trips)
{
	fv_eval_result r;
	fv_eval_entry e;
	fv_jsonw w;
	result(&r, "/x/run \"q\"", 120, 0.812345678, 0.5);
	fv_jsonw_init(&w);
	FV_CHECK_OK(fv_eval_result_json(&r, &w));
	FV_CHECK_OK(fv_jsonr_check(w.buf, w.len));
	FV_CHECK(strstr(w.buf, "\"per_class\": [0.5, null, 1]") != NULL);
	FV_CHECK(strstr(w.buf, "\"confusion\": [[5, 0, 0], [0, 7, 0], [0, 0, 0]]") != NULL);
	FV_CHECK_OK(fv_eval_entry_parse(w.buf, w.len, &e));
	FV_CHECK(!strcmp(e.ckpt, "ckpt-000000120.fvc"));
	FV_CHECK(!strcmp(e.path, r.path));
	FV_CHECK_EQ(e.step, 120);
	FV_CHECK_EQ(e.n, 1000);
	FV_CHECK(!e.failed);
	FV_CHECK_NEAR(e.top1, 0.812345678, 1e-9);
	FV_CHECK_NEAR(e.loss, 0.5, 0);
	fv_jsonw_free(&w);
	fv_eval_result_free(&r);

	/* a failed one carries its reason and never wins */
	memset(&r, 0, sizeof r);
	snprintf(r.path, sizeof r.path, "/x/ckpt-000000007.fvc");
	r.failed = 1;
	snprintf(r.error, sizeof r.error, "bad checksum");
	fv_jsonw_init(&w);
	FV_CHECK_OK(fv_eval_result_json(&r, &w));
	FV_CHECK_OK(fv_eval_entry_parse(w.buf, w.len, &e));
	FV_CHECK(e.failed);
	FV_CHECK(!fv_champion_better(&e, NULL));
	fv_jsonw_free(&w);
}

FV_TEST(champion_ties)
{
	fv_eval_entry a = { .top1 = 0.9, .loss = 0.3, .step = 100 };
	fv_eval_entry b = a;
	FV_CHECK(fv_champion_better(&a, NULL));
	FV_CHECK(!fv_champion_better(&a, &b)); /* identical: the incumbent stays */
	b.top1 = 0.91;
	FV_CHECK(fv_champion_better(&b, &a));
	FV_CHECK(!fv_champion_better(&a, &b));
	b.top1 = 0.9, b.loss = 0.29;           /* tie on top-1: lower loss wins */
	FV_CHECK(fv_champion_better(&b, &a));
	FV_CHECK(!fv_champion_better(&a, &b));
	b.loss = 0.3, b.step = 50;             /* tie on both: the earlier step */
	FV_CHECK(fv_champion_better(&b, &a));
	b.loss = NAN;                          /* an unknown loss loses the tie */
	FV_CHECK(!fv_champion_better(&b, &a));
	FV_CHECK(fv_champion_better(&a, &b));
	b.failed = 1, b.top1 = 1;
	FV_CHECK(!fv_champion_better(&b, &a));
	FV_CHECK(fv_champion_better(&a, &b));
}

static size_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : (size_t)st.st_size;
}

FV_TEST(evlog_append_reopen_and_best)
{
	const char *dir = fv_test_tmpdir();
	fv_evlog *l;
	fv_eval_result r;
	size_t torn;
	FV_CHECK_OK(fv_evlog_open(&l, dir, &torn));
	FV_CHECK_EQ(fv_evlog_count(l), 0);
	FV_CHECK_EQ(fv_evlog_best(l), -1);
	double top1[] = { 0.5, 0.7, 0.7, 0.6 }, loss[] = { 1.0, 0.8, 0.7, 0.5 };
	for (int i = 0; i < 4; i++) {
		result(&r, dir, 100 * (i + 1), top1[i], loss[i]);
		FV_CHECK_OK(fv_evlog_append(l, &r));
		fv_eval_result_free(&r);
	}
	FV_CHECK_EQ(fv_evlog_best(l), 2);      /* 0.7 at loss 0.7 beats 0.7 at 0.8 */
	fv_evlog_close(&l);
	FV_CHECK_OK(fv_evlog_open(&l, dir, &torn));
	FV_CHECK_EQ(torn, 0);
	FV_CHECK_EQ(fv_evlog_count(l), 4);
	FV_CHECK_EQ(fv_evlog_best(l), 2);
	FV_CHECK_EQ(fv_evlog_find(l, "ckpt-000000300.fvc"), 2);
	FV_CHECK_EQ(fv_evlog_find(l, "ckpt-000000500.fvc"), -1);
	fv_evlog_close(&l);
}

FV_TEST(evlog_cuts_a_torn_last_line)
{
	const char *dir = fv_test_tmpdir();
	char path[4200], line[8192];
	fv_evlog *l;
	fv_eval_result r;
	size_t torn;
	snprintf(path, sizeof path, "%s/eval.jsonl", dir);
	FV_CHECK_OK(fv_evlog_open(&l, dir, NULL));
	for (int i = 0; i < 2; i++) {
		result(&r, dir, 10 * (i + 1), 0.5 + i * 0.1, 1);
		FV_CHECK_OK(fv_evlog_append(l, &r));
		fv_eval_result_free(&r);
	}
	fv_evlog_close(&l);
	size_t good = file_size(path);
	/* a crash mid-write: the start of a third line, no newline */
	FILE *f = fopen(path, "r");
	size_t first = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	FV_CHECK(first == good);
	line[first] = '\0'; /* fputs below writes it back whole */
	char *nl = memchr(line, '\n', first);
	FV_CHECK(nl != NULL);
	int fd = open(path, O_WRONLY | O_APPEND);
	FV_CHECK(write(fd, line, (size_t)(nl - line) / 2) > 0);
	close(fd);
	FV_CHECK(file_size(path) > good);
	FV_CHECK_OK(fv_evlog_open(&l, dir, &torn));
	FV_CHECK_EQ(fv_evlog_count(l), 2);
	FV_CHECK_EQ(torn, (size_t)(nl - line) / 2);
	FV_CHECK_EQ(file_size(path), good);   /* cut, so the next append starts clean */
	result(&r, dir, 30, 0.9, 1);
	FV_CHECK_OK(fv_evlog_append(l, &r));
	fv_eval_result_free(&r);
	fv_evlog_close(&l);
	FV_CHECK_OK(fv_evlog_open(&l, dir, &torn));
	FV_CHECK_EQ(torn, 0);
	FV_CHECK_EQ(fv_evlog_count(l), 3);
	FV_CHECK_EQ(fv_evlog_best(l), 2);
	fv_evlog_close(&l);

	/* a garbage line in the middle is skipped, the rest kept */
	fd = open(path, O_WRONLY | O_APPEND);
	FV_CHECK(write(fd, "{\"oops\n", 7) == 7);
	close(fd);
	f = fopen(path, "a");
	fputs(line, f); /* the first two lines again: ckpt 10 and 20 */
	fclose(f);
	FV_CHECK_OK(fv_evlog_open(&l, dir, &torn));
	FV_CHECK_EQ(fv_evlog_count(l), 5);
	fv_evlog_close(&l);
}

FV_TEST(champion_files_are_written_atomically)
{
	const char *dir = fv_test_tmpdir();
	char ck[4000], path[4200], name[256];
	fv_eval_entry e = { .top1 = 0.8, .loss = 0.4, .step = 7, .n = 10 };
	snprintf(ck, sizeof ck, "%s/ckpt-000000007.fvc", dir);
	FILE *f = fopen(ck, "w");
	fputs("weights-7", f);
	fclose(f);
	snprintf(e.ckpt, sizeof e.ckpt, "ckpt-000000007.fvc");
	snprintf(e.path, sizeof e.path, "%s", ck);
	FV_CHECK_EQ(fv_champion_read(dir, name, sizeof name), FV_E_NOTFOUND);
	FV_CHECK_OK(fv_champion_write(dir, &e));
	FV_CHECK_OK(fv_champion_read(dir, name, sizeof name));
	FV_CHECK(!strcmp(name, "ckpt-000000007.fvc"));
	/* the trainer prunes the checkpoint: the champion copy stays */
	FV_CHECK_OK(unlink(ck));
	snprintf(path, sizeof path, "%s/champion.fvc", dir);
	f = fopen(path, "r");
	FV_CHECK(f != NULL);
	char buf[32] = "";
	if (f) {
		FV_CHECK(fgets(buf, sizeof buf, f) != NULL);
		fclose(f);
	}
	FV_CHECK(!strcmp(buf, "weights-7"));
	/* no temp files left behind */
	snprintf(path, sizeof path, "%s/.champion.tmp-%d", dir, (int)getpid());
	FV_CHECK(access(path, F_OK) != 0);
	/* a champion whose checkpoint is gone cannot be placed: error, old kept */
	FV_CHECK(fv_champion_write(dir, &e) != 0);
	FV_CHECK_OK(fv_champion_read(dir, name, sizeof name));
	FV_CHECK(!strcmp(name, "ckpt-000000007.fvc"));
}
