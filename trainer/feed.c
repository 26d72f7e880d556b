/* trainer/feed.c — see feed.h. */
#include "trainer/feed.h"
#include "trainer/plan.h"
#include "fv_error.h"
#include "fv_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fv_feed {
	fv_store *store;
	fv_augc *augc;
	fv_feed_opts o;
	size_t sample_bytes;
	/* the split as the current epoch sees it */
	uint64_t *keys;
	uint32_t *labels;
	size_t n;
	uint32_t *order, *scratch;
	uint32_t *class_start, *by_class; /* indices grouped by class, for replacement */
	uint64_t epoch;
	size_t next_submit, next_deliver, batches;
	/* per in-flight batch: its labels (window slots, indexed batch % window) */
	int *slot_labels;
	/* what fv_feed_next hands out */
	void *x;
	void *dest;             /* fv_feed_set_dest: the next batch goes here */
	uint64_t generation;    /* bumped by each fv_feed_epoch / fv_feed_set_subset */
	int *y;
	fv_aug_input *inputs;
	uint64_t *seeds;
	uint8_t *replace_buf;
	size_t replace_cap;
	uint64_t bad;
	FILE *trace;
	int trace_defer;        /* hold each batch's line until fv_feed_trace_commit */
	char *trace_line;       /* the held line ("" when none) */
	size_t trace_cap;
	uint64_t *subset;       /* subset mode: the keys an epoch may use, ascending */
	size_t nsubset;
};

uint64_t fv_feed_generation(const fv_feed *f)
{
	return f->generation;
}

int fv_feed_set_subset(fv_feed *f, const uint64_t *keys, size_t n)
{
	f->generation++;
	free(f->subset);
	f->subset = NULL;
	f->nsubset = 0;
	if (!keys || !n)
		return 0;
	if (!(f->subset = malloc(n * sizeof *f->subset)))
		return ENOMEM;
	memcpy(f->subset, keys, n * sizeof *keys);
	f->nsubset = n;
	return 0;
}

/* Keep the split's records whose keys are in the subset (both ascending). */
static size_t keep_subset(fv_feed *f, size_t n)
{
	size_t m = 0, j = 0;
	for (size_t i = 0; i < n; i++) {
		while (j < f->nsubset && f->subset[j] < f->keys[i])
			j++;
		if (j < f->nsubset && f->subset[j] == f->keys[i]) {
			f->keys[m] = f->keys[i];
			f->labels[m++] = f->labels[i];
		}
	}
	return m;
}

void fv_feed_trace(fv_feed *f, FILE *trace)
{
	f->trace = trace;
}

void fv_feed_trace_defer(fv_feed *f, int on)
{
	f->trace_defer = on;
}

void fv_feed_trace_commit(fv_feed *f)
{
	if (f->trace && f->trace_line && *f->trace_line) {
		fputs(f->trace_line, f->trace);
		fflush(f->trace);
	}
	if (f->trace_line)
		*f->trace_line = 0;
}

int fv_feed_new(fv_feed **out, fv_store *store, fv_augc *augc, const fv_feed_opts *o)
{
	fv_feed *f = calloc(1, sizeof *f);
	*out = NULL;
	if (!f)
		return ENOMEM;
	f->store = store;
	f->augc = augc;
	f->o = *o;
	if (f->o.window < 1)
		f->o.window = 1;
	f->sample_bytes = fv_aug_out_bytes(&o->params);
	f->slot_labels = malloc((size_t)f->o.window * o->batch * sizeof *f->slot_labels);
	f->x = malloc((size_t)o->batch * f->sample_bytes);
	f->y = malloc((size_t)o->batch * sizeof *f->y);
	f->inputs = malloc((size_t)o->batch * sizeof *f->inputs);
	f->seeds = malloc((size_t)o->batch * sizeof *f->seeds);
	f->class_start = calloc((size_t)o->classes + 1, sizeof *f->class_start);
	if (!f->slot_labels || !f->x || !f->y || !f->inputs || !f->seeds || !f->class_start) {
		fv_feed_destroy(&f);
		return ENOMEM;
	}
	*out = f;
	return 0;
}

static void free_split(fv_feed *f)
{
	free(f->keys);
	free(f->labels);
	free(f->order);
	free(f->scratch);
	free(f->by_class);
	f->keys = NULL;
	f->labels = NULL;
	f->order = f->scratch = f->by_class = NULL;
	f->n = 0;
}

void fv_feed_destroy(fv_feed **p)
{
	fv_feed *f = *p;
	if (!f)
		return;
	/* drain what is still in flight so the client holds nothing of ours */
	while (f->next_deliver < f->next_submit) {
		fv_augc_batch *b;
		if (fv_augc_next(f->augc, &b, 5000))
			break;
		fv_augc_release(f->augc, &b);
		f->next_deliver++;
	}
	free_split(f);
	free(f->slot_labels);
	free(f->trace_line);
	free(f->x);
	free(f->y);
	free(f->inputs);
	free(f->seeds);
	free(f->class_start);
	free(f->replace_buf);
	free(f->subset);
	free(f);
	*p = NULL;
}

static const char *split_name(uint32_t s)
{
	return s == 0 ? "train" : s == 1 ? "val" : "test";
}

int fv_feed_epoch(fv_feed *f, uint64_t epoch, size_t start, uint64_t key_bound,
		  uint64_t *key_bound_out)
{
	uint64_t version;
	size_t n;
	int rc;

	if (f->next_deliver < f->next_submit)
		return fv_err_set(FV_E_INTERNAL, "feed: new epoch with batches in flight");
	f->generation++;
	free_split(f);
	rc = fv_store_split_index(f->store, f->o.split, &f->keys, &f->labels, &n, &version);
	if (rc)
		return rc;
	if (f->subset) {
		n = keep_subset(f, n);
		key_bound = 0;
	} else if (key_bound) { /* keys ascend: keep the prefix the epoch first saw */
		while (n && f->keys[n - 1] >= key_bound)
			n--;
	}
	if (!key_bound) {
		fv_store_meta m;
		if ((rc = fv_store_meta_get(f->store, &m)))
			return rc;
		key_bound = n ? f->keys[n - 1] + 1 : 0;
		if (m.next_key > key_bound)
			key_bound = m.next_key;
	}
	if (key_bound_out)
		*key_bound_out = key_bound;
	f->n = n;
	if (!n || (f->o.drop_last && n < (size_t)f->o.batch))
		return fv_err_set(FV_E_NOTFOUND, "the %s split of %s has %zu records: too few for a batch of %d",
				  split_name(f->o.split), fv_store_dir(f->store), n, f->o.batch);
	f->order = malloc(n * sizeof *f->order);
	f->scratch = malloc((n + f->o.classes + 1) * sizeof *f->scratch);
	f->by_class = malloc(n * sizeof *f->by_class);
	if (!f->order || !f->scratch || !f->by_class)
		return ENOMEM;
	/* per-class index lists for replacements */
	memset(f->class_start, 0, (f->o.classes + 1) * sizeof *f->class_start);
	for (size_t i = 0; i < n; i++) {
		if (f->labels[i] >= (uint32_t)f->o.classes)
			return fv_err_set(FV_E_CORRUPT, "record %llu has label %u but the model has %d classes",
					  (unsigned long long)f->keys[i], f->labels[i], f->o.classes);
		f->class_start[f->labels[i] + 1]++;
	}
	for (int c = 0; c < f->o.classes; c++)
		f->class_start[c + 1] += f->class_start[c];
	memcpy(f->scratch, f->class_start, f->o.classes * sizeof *f->scratch);
	for (size_t i = 0; i < n; i++)
		f->by_class[f->scratch[f->labels[i]]++] = (uint32_t)i;

	switch (f->o.order) {
	case FV_FEED_SHUFFLE:
		fv_plan_shuffle(f->order, n, f->o.seed, epoch);
		break;
	case FV_FEED_BALANCED:
		if ((rc = fv_plan_balanced(f->order, n, f->labels, f->o.classes, f->o.seed, epoch, f->scratch)))
			return fv_err_set(rc, "class-balanced plan failed");
		break;
	case FV_FEED_SEQUENTIAL:
		for (size_t i = 0; i < n; i++)
			f->order[i] = (uint32_t)i;
		break;
	}
	f->epoch = epoch;
	f->batches = f->o.drop_last ? n / f->o.batch : (n + f->o.batch - 1) / f->o.batch;
	f->next_submit = f->next_deliver = start < f->batches ? start : f->batches;
	return 0;
}

size_t fv_feed_batches(const fv_feed *f) { return f->batches; }
size_t fv_feed_records(const fv_feed *f) { return f->n; }
uint64_t fv_feed_bad_samples(const fv_feed *f) { return f->bad; }

static int batch_size(const fv_feed *f, size_t b)
{
	size_t first = b * f->o.batch;
	return (int)(f->n - first < (size_t)f->o.batch ? f->n - first : (size_t)f->o.batch);
}

static void input_of(fv_aug_input *in, const fv_record *r)
{
	in->encoding = (enum fv_aug_encoding)r->encoding;
	in->data = r->data;
	in->len = r->data_len;
	in->width = r->width;
	in->height = r->height;
	in->channels = r->channels;
}

/* Submit batch b: one short read txn, the bytes copied by the client. */
static int submit(fv_feed *f, size_t b)
{
	fv_store_rtxn *t;
	int n = batch_size(f, b), rc;
	int *lab = f->slot_labels + (b % f->o.window) * f->o.batch;

	if ((rc = fv_store_read_begin(f->store, &t)))
		return rc;
	for (int i = 0; i < n; i++) {
		uint32_t idx = f->order[b * f->o.batch + i];
		fv_record r;
		if ((rc = fv_store_get(t, f->keys[idx], &r))) {
			fv_store_read_end(&t);
			return rc;
		}
		input_of(&f->inputs[i], &r);
		f->seeds[i] = fv_sample_seed(f->o.seed, f->epoch, f->keys[idx]);
		lab[i] = (int)f->labels[idx];
	}
	rc = fv_augc_submit(f->augc, f->epoch | f->o.tag, b, &f->o.params, f->inputs, f->seeds, n, lab);
	fv_store_read_end(&t);
	return rc;
}

void fv_feed_set_dest(fv_feed *f, void *dest)
{
	f->dest = dest;
}

int fv_feed_next(fv_feed *f, const void **x, const int **labels, int *n, double *waited_ms)
{
	fv_augc_batch *b;
	int rc;

	if (f->next_deliver >= f->batches)
		return FV_E_NOTFOUND;
	while (f->next_submit < f->batches && f->next_submit - f->next_deliver < (size_t)f->o.window) {
		rc = submit(f, f->next_submit);
		if (rc == EAGAIN)
			break;
		if (rc)
			return rc;
		f->next_submit++;
	}
	fv_augc_stats st0, st1;
	fv_augc_stats_get(f->augc, &st0);
	rc = fv_augc_next(f->augc, &b, 120000);
	fv_augc_stats_get(f->augc, &st1);
	if (waited_ms)
		*waited_ms = st1.wait_ms - st0.wait_ms;
	if (rc == EAGAIN)
		return fv_err_set(FV_E_TIMEOUT, "no augmented batch for 120 s: are any fovea-augment workers connected?");
	if (rc)
		return rc;
	if (b->index != f->next_deliver || (b->epoch & ~FV_FEED_TAG_EVAL) != f->epoch) {
		rc = fv_err_set(FV_E_INTERNAL, "feed: got batch %llu of epoch %llu, expected %zu",
				(unsigned long long)b->index, (unsigned long long)b->epoch, f->next_deliver);
		fv_augc_release(f->augc, &b);
		return rc;
	}
	f->next_deliver++;
	if (b->rc) {
		rc = fv_err_set(b->rc, "batch %llu: %s", (unsigned long long)b->index,
				b->nfailed && b->reasons ? "a sample failed to decode" : fv_strerror(b->rc));
		for (int i = 0; i < b->n && b->reasons; i++)
			if (b->failed[i] && b->reasons[i]) {
				rc = fv_err_set(b->rc, "batch %llu sample %d: %s", (unsigned long long)b->index,
						i, b->reasons[i]);
				break;
			}
		fv_augc_release(f->augc, &b);
		return rc;
	}
	const int *lab = b->tag;
	int k = 0;
	if (f->trace) {
		char *line = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);
		if (m) {
			fprintf(m, "%llu %llu", (unsigned long long)f->epoch, (unsigned long long)b->index);
			for (int i = 0; i < b->n; i++)
				if (!(b->failed && b->failed[i]))
					fprintf(m, " %llu",
						(unsigned long long)f->keys[f->order[b->index * f->o.batch + i]]);
			fputc('\n', m);
			fclose(m);
		}
		free(f->trace_line);
		f->trace_line = line;
		if (!f->trace_defer)
			fv_feed_trace_commit(f);
	}
	char *dst = f->dest ? f->dest : f->x;
	for (int i = 0; i < b->n; i++) {
		if (b->failed && b->failed[i]) { /* skipped: leave it out */
			f->bad++;
			continue;
		}
		memcpy(dst + (size_t)k * f->sample_bytes,
		       (const char *)b->data + (size_t)i * b->sample_bytes, b->sample_bytes);
		f->y[k++] = lab[i];
	}
	fv_augc_release(f->augc, &b);
	*x = dst;
	*labels = f->y;
	*n = k;
	return 0;
}

static int replace(fv_feed *f, uint64_t batch, int index, fv_aug_input *in, uint64_t *seed)
{
	fv_store_rtxn *t;
	fv_record r;
	int lab = f->slot_labels[(batch % f->o.window) * f->o.batch + index];
	uint32_t lo = f->class_start[lab], hi = f->class_start[lab + 1];
	int rc;

	if (hi <= lo)
		return FV_E_NOTFOUND;
	f->bad++;
	uint64_t h = fv_mix64(f->o.seed ^ fv_mix64(f->epoch ^ fv_mix64(batch * 4096 + index)) ^ f->bad);
	uint32_t idx = f->by_class[lo + h % (hi - lo)];
	if ((rc = fv_store_read_begin(f->store, &t)))
		return rc;
	if (!(rc = fv_store_get(t, f->keys[idx], &r))) {
		if (r.data_len > f->replace_cap) {
			uint8_t *nb = realloc(f->replace_buf, r.data_len);
			if (!nb) {
				fv_store_read_end(&t);
				return ENOMEM;
			}
			f->replace_buf = nb;
			f->replace_cap = r.data_len;
		}
		memcpy(f->replace_buf, r.data, r.data_len);
		input_of(in, &r);
		in->data = f->replace_buf;
		*seed = fv_sample_seed(f->o.seed, f->epoch, f->keys[idx]);
	}
	fv_store_read_end(&t);
	if (!rc)
		fv_warn("batch %llu sample %d failed to decode: replaced by record %llu of class %d",
			(unsigned long long)batch, index, (unsigned long long)f->keys[idx], lab);
	return rc;
}

int fv_feed_route_replace(void *router, uint64_t epoch, uint64_t batch, int index,
			  fv_aug_input *in, uint64_t *seed)
{
	fv_feed_router *r = router;
	fv_feed *f = (epoch & FV_FEED_TAG_EVAL) ? r->eval : r->train;
	if (!f)
		return FV_E_NOTFOUND;
	return replace(f, batch, index, in, seed);
}
