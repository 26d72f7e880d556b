/* ingest.h — the parts of fovea-ingest and how they meet: the configuration,
 * one input (an item) as it moves from a source through validation to the
 * writer, the writer that commits items in batches, and the entry points of
 * the batch run, the watch daemon and stats. */
#ifndef FV_INGEST_H
#define FV_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fv_config.h"
#include "fv_store.h"

enum { ENC_OPT_JPEG = 0, ENC_OPT_RAW = 1 }; /* --encoding choices order */
enum { DATA_BORROWED = 0, DATA_MALLOC = 1 };

typedef struct ingest_cfg {
	char *db;
	int split;           /* fovea.Split */
	double val_fraction; /* hold out this share to val, by content hash */
	long resize;         /* shorter side; 0 keeps */
	long quality;
	int encoding;        /* ENC_OPT_* */
	long jobs;
	long max_mpixels;
	char *labels;        /* class names, one per line (IDX, list files) */
	char *watch;         /* inbox directory: daemon mode */
	char *pub;           /* ZMQ PUB endpoint for DatasetUpdated */
	char *status_ep;     /* watch: status endpoint (lib/fv_status.h) */
	long batch;          /* records per commit */
	long batch_ms;       /* watch: commit at least this often */
	long rescan_s;       /* watch: scan the inbox this often too (0 = only on events) */
	int delete_stored;   /* watch: unlink stored files instead of moving them to .done */
	long map_mb;         /* initial map size of a new dataset */
	int recheck;         /* read files the dataset has, unchanged, again */
	int nosync;
	double progress;     /* seconds between progress lines of a batch run; 0 = none */
	int json;            /* stats */
	int log_level;       /* index into error|warn|info|debug */
} ingest_cfg;

extern const fv_cfg_opt ingest_options[];
/* The process's malloc policy for ingest: main() and the benchmark call it
 * before any thread starts. */
void ingest_malloc_setup(void);

/* One input. A source fills path/source/cls (or the raw fields for IDX);
 * ing_item_prepare fills the rest or sets `reason`. */
typedef struct ing_item {
	char *path;          /* file to read (NULL for in-memory IDX items) */
	char *source;        /* what Record.source says */
	char *cls;           /* class id */
	const char *cls_name;/* borrowed; NULL = id */
	char *reason;        /* set: rejected, and why (one line) */
	uint32_t split, encoding, width, height, channels;
	uint8_t hash[FV_HASH_LEN];
	uint8_t *data;       /* what gets stored */
	size_t len;
	int data_owned;      /* DATA_*: how data is freed with the item */
	fv_source_stat src;  /* the file's stat, when has_src */
	int has_src;         /* src is set and old enough to trust on a re-run */
	int known;           /* in the dataset already with this stat: not read */
	int scanned;         /* the inbox daemon found it by a scan, not an event */
	int read_error;      /* rejected as unreadable: errno (or -1: not a regular file) */
} ing_item;

/* A file input of class cls (both copied); NULL on ENOMEM. */
ing_item *ing_item_new_file(const char *path, const char *cls);
void ing_item_free(ing_item *it);
/* Read, fully decode, hash, then resize/encode path's image per cfg. Never
 * fails: a bad input gets it->reason. Thread-safe; fd is path opened
 * already (taken and closed) or -1; with index, a file the dataset has
 * already, unchanged (fv_store_source_known), is not read but marked known;
 * scratch (may be NULL) is the calling thread's decode buffer, reused from
 * item to item. */
struct fv_image;
/* A file's identity for "unchanged since" (size, inode, mtime, ctime). */
struct stat;
void ing_source_stat(const struct stat *sb, fv_source_stat *st);
int ing_source_stat_eq(const fv_source_stat *a, const fv_source_stat *b);
void ing_item_prepare(const ingest_cfg *cfg, ing_item *it, int fd, fv_store *index,
		      struct fv_image *scratch);
/* Hash-derived split: val for a val_fraction share of contents, else cfg's. */
uint32_t ing_item_split(const ingest_cfg *cfg, const uint8_t hash[FV_HASH_LEN]);
/* Set it->reason from a printf format; returns it. */
ing_item *ing_item_reject(ing_item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The writer: gathers items, commits a batch every cfg->batch records (or
 * when flushed), prints one line per reject, and keeps the run's totals.
 * Batches commit in order on a thread of the writer's own (the done
 * callback runs there); add, classes and flush are for one thread at a
 * time, not necessarily the same one. A failed commit makes every later
 * add and flush return its error; nothing after it is committed. */
typedef struct ing_writer ing_writer;
typedef void (*ing_writer_done_fn)(void *ctx, ing_item *it, int stored, uint64_t version);
int ing_writer_new(fv_store *s, const ingest_cfg *cfg, ing_writer **out);
void ing_writer_destroy(ing_writer **w);
/* Classes to register (in this order) with the next commit. */
int ing_writer_classes(ing_writer *w, char **ids, char **names, size_t n);
/* Take ownership of it (also on failure); may commit. */
int ing_writer_add(ing_writer *w, ing_item *it);
int ing_writer_flush(ing_writer *w);
/* Called for every item after its batch commits (stored: 0 = rejected). */
void ing_writer_on_done(ing_writer *w, ing_writer_done_fn fn, void *ctx);
/* The dataset the writer commits to. */
fv_store *ing_writer_store(ing_writer *w);
/* Of the committed duplicates, the files known unchanged and not read. */
uint64_t ing_writer_known(const ing_writer *w);
/* The error a commit failed with (every later call returns it; the detail
 * goes to fv_err_msg), or 0. */
int ing_writer_failed(const ing_writer *w);
/* Items waiting, plus one if a commit is in flight: flush if non-zero.
 * Any thread may ask (a status endpoint, while another thread adds). */
size_t ing_writer_pending(const ing_writer *w);
void ing_writer_totals(const ing_writer *w, uint64_t *added, uint64_t *dups, uint64_t *rejected,
		   uint64_t *version);

/* The decode pool: validates file items (ing_item_prepare) on cfg->jobs
 * threads and hands them to the writer in the order they were added. An
 * item added with a reason already set goes to the writer as it is.
 * keep, when set, runs on a pool thread before an item goes to the writer:
 * 0 drops (frees) it. on_idle tells a caller that waits for the pool to
 * hand everything on (ing_pool_busy 0) when that happened. A batch run's
 * caller is one of the decoders (in add, when it lists far ahead, and in
 * close); a daemon pool runs cfg->jobs threads of its own and never skips
 * a file by its stat. SIGINT/SIGTERM stop the pool: items not yet handed
 * on are dropped, and add and busy return ECANCELED. */
typedef struct ing_pool ing_pool;
typedef int (*ing_pool_keep_fn)(void *ctx, ing_item *it);
typedef struct ing_pool_opts {
	int daemon;
	ing_pool_keep_fn keep;
	void (*on_idle)(void *ctx); /* the last item added was handed on (a pool
				     * thread, with the pool's lock held: wake the
				     * caller, call nothing of the pool) */
	void *ctx;                  /* keep's and on_idle's */
} ing_pool_opts;
int ing_pool_open(const ingest_cfg *cfg, ing_writer *w, const ing_pool_opts *o, ing_pool **out);
/* Queue it; takes it, also on failure. The pool's error once it stopped. */
int ing_pool_add(ing_pool *p, ing_item *it);
/* Items added and not yet handed to the writer (while it is non-zero a
 * pool thread may be adding to the writer: do not flush); *rc gets the
 * pool's error (detail in fv_err_msg), when rc is not NULL. */
size_t ing_pool_busy(ing_pool *p, int *rc);
/* No more items (rc: the caller's own failure, which stops the pool): work
 * along until all are handed on, then free the pool. 0 or the first error. */
int ing_pool_close(ing_pool **pp, int rc);

/* Sources. Each adds its items to the writer (files through a pool of
 * cfg->jobs threads, delivered in order). */
int ing_source_add(const ingest_cfg *cfg, ing_writer *w, const char *src);
int ing_source_folder(const ingest_cfg *cfg, ing_writer *w, const char *dir);
int ing_source_list(const ingest_cfg *cfg, ing_writer *w, const char *list);
int ing_source_idx(const ingest_cfg *cfg, ing_writer *w, const char *images);

/* List files: "<path> <label>" per line (label after the last blank);
 * blank lines and '#' comments skipped. Calls fn per entry with path and
 * label NUL-terminated in a scratch copy; returns FV_E_FORMAT naming the
 * line for a line without a label. */
typedef int (*ing_list_fn)(void *ctx, const char *path, const char *label, size_t line);
int ing_list_parse(const char *buf, size_t len, const char *name, ing_list_fn fn, void *ctx);
/* Read a --labels file: one name per line. *names owned by the caller. */
int ing_labels_read(const char *path, char ***names, size_t *n);
void ing_labels_free(char ***names, size_t n);

int ingest_stats(int argc, char **argv);
int ingest_events(int argc, char **argv);
int ingest_watch(const ingest_cfg *cfg, fv_store *s);

#endif
