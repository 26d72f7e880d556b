/* fv_store.h — the LMDB dataset: one environment in a directory with four
 * named databases (DESIGN.md "Dataset"):
 *
 *   records  8-byte big-endian sequence key -> packed fovea.Record
 *   classes  4-byte big-endian class index  -> packed fovea.ClassInfo
 *   hashes   16-byte content hash           -> 8-byte record key (dedup)
 *   meta     name ("version", "records", "train", ...) -> 8-byte big-endian u64
 *   sources  XXH3-128 of a source path -> its file's stat (fv_source_stat)
 *            and the record key; ingest's re-runs skip files it already has
 *            (added with the others of its commit; a dataset from before
 *            the index gains it on the next write)
 *
 * Only fovea-ingest writes (one writer; LMDB serializes writers anyway).
 * Readers open with FV_STORE_RDONLY and take short read transactions: LMDB's
 * MVCC means a reader sees one consistent snapshot and never blocks the
 * writer, but a long-held read txn pins old pages and makes the file grow, so
 * the trainer takes one per batch. The map grows by itself: the writer
 * doubles it on MDB_MAP_FULL and retries the batch; readers follow with
 * MDB_MAP_RESIZED. Durability is LMDB's (fsync per commit) unless
 * FV_STORE_LAZYMETA or FV_STORE_NOSYNC is given.
 *
 * Every function returns 0, an errno value, or an FV_E* code, with detail in
 * fv_err_msg(). */
#ifndef FV_STORE_H
#define FV_STORE_H

#include <stddef.h>
#include <stdint.h>

#define FV_STORE_SCHEMA 1
#define FV_HASH_LEN 16
#define FV_SPLITS 3 /* fovea.Split: train, val, test */

enum {
	FV_STORE_RDONLY = 1, /* readers: MDB_RDONLY; the dataset must exist */
	FV_STORE_CREATE = 2, /* writer: create DIR and the databases if missing */
	FV_STORE_NOSYNC = 4, /* writer: no fsync per commit (tests, benchmarks) */
	/* writer: a commit syncs its pages but writes the meta page unsynced
	 * (MDB_NOMETASYNC: one fsync per commit, not two); the next commit's
	 * sync, fv_store_sync or the close makes it durable. A system crash may
	 * undo the last commit, never corrupt the dataset; a process crash
	 * loses nothing. For batch runs that a re-run completes (ingest). */
	FV_STORE_LAZYMETA = 8,
};

typedef struct fv_store fv_store;
typedef struct fv_store_rtxn fv_store_rtxn;
typedef struct fv_store_wtxn fv_store_wtxn;

typedef struct fv_store_meta {
	uint64_t schema;
	uint64_t version;     /* bumped by every commit that adds records or classes */
	uint64_t records;     /* stored records, all splits */
	uint64_t split[FV_SPLITS];
	uint32_t classes;
	uint64_t duplicates;  /* inputs not stored because their content was already */
	uint64_t rejected;    /* inputs refused (corrupt, not an image, too big ...) */
	uint64_t next_key;    /* key the next record gets */
} fv_store_meta;

typedef struct fv_class {
	uint32_t index;
	char *id;             /* folder name or label as given; owned */
	char *name;           /* human-readable; owned */
	uint64_t split[FV_SPLITS]; /* records of this class per split */
} fv_class;

/* One stored record, unpacked without copying: every pointer points into the
 * LMDB map and is valid until the read transaction it came from ends. Do not
 * free or write through them. `source` is not NUL-terminated. */
typedef struct fv_record {
	uint64_t key;
	uint32_t label, split, encoding, width, height, channels;
	const uint8_t *hash;
	size_t hash_len;
	const char *source;
	size_t source_len;
	const uint8_t *data;  /* JPEG bytes or raw HWC pixels (encoding) */
	size_t data_len;
	uint64_t dataset_version;
} fv_record;

/* ---------------------------------------------------------------- readers */

/* Open the dataset in `dir`. flags: FV_STORE_RDONLY for readers, or
 * FV_STORE_CREATE (and FV_STORE_LAZYMETA or FV_STORE_NOSYNC) for the writer. mapsize: the initial
 * map size in bytes for a new environment (0 = 256 MiB); an existing one
 * keeps its own. Returns 0, FV_E_NOTFOUND (no dataset and no CREATE),
 * FV_E_MISMATCH (unknown schema) or FV_E_LMDB. *out is closed with
 * fv_store_close. */
int fv_store_open(const char *dir, int flags, size_t mapsize, fv_store **out);
/* Make every commit so far durable (fsync; nothing with FV_STORE_NOSYNC).
 * 0 or FV_E_LMDB. */
int fv_store_sync(fv_store *s);
/* Close and NULL *s (with FV_STORE_LAZYMETA, after fv_store_sync). Every
 * transaction of s must have ended. */
void fv_store_close(fv_store **s);
/* The directory s was opened on; valid while s is open. */
const char *fv_store_dir(const fv_store *s);
/* Current map size in bytes (grows as the writer needs). */
size_t fv_store_mapsize(const fv_store *s);

/* Counts and versions as of now (one short read txn). */
int fv_store_meta_get(fv_store *s, fv_store_meta *m);

/* Every class, in index order (index i at (*out)[i]). *out is owned by the
 * caller: free with fv_store_classes_free(out, n). n may be 0 (*out NULL). */
int fv_store_classes(fv_store *s, fv_class **out, uint32_t *n);
void fv_store_classes_free(fv_class **c, uint32_t n);

/* The keys and labels of every record in `split`, in key order, as of one
 * read snapshot whose dataset version goes to *version (may be NULL). *keys
 * and *labels are malloc'd arrays of *n entries owned by the caller (free());
 * labels may be NULL if not wanted. The trainer builds its epoch plan over
 * these (class-balanced sampling needs no second pass). */
int fv_store_split_index(fv_store *s, uint32_t split, uint64_t **keys, uint32_t **labels,
			 size_t *n, uint64_t *version);

/* Begin a read transaction (a snapshot). Keep it short. If another process
 * grew the map, this remaps first, waiting for this process's other
 * transactions on s to end: never call it while the same thread holds a txn.
 * End with fv_store_read_end, which NULLs *t. */
int fv_store_read_begin(fv_store *s, fv_store_rtxn **t);
void fv_store_read_end(fv_store_rtxn **t);
/* The record under `key`, zero-copy (see fv_record). FV_E_NOTFOUND if none,
 * FV_E_CORRUPT if the stored bytes do not parse. */
int fv_store_get(fv_store_rtxn *t, uint64_t key, fv_record *r);
/* Meta as of this transaction's snapshot. */
int fv_store_read_meta(fv_store_rtxn *t, fv_store_meta *m);
/* Every class as of this transaction's snapshot (as fv_store_classes). */
int fv_store_read_classes(fv_store_rtxn *t, fv_class **out, uint32_t *n);
/* Parse packed Record bytes into r without copying (pointers into buf).
 * Returns 0 or FV_E_CORRUPT. r->key is left 0. */
int fv_record_parse(const void *buf, size_t len, fv_record *r);

/* ---------------------------------------------------------------- writer */

/* A source file as stat(2) saw it: size, modification and change times,
 * inode. A file whose stat is unchanged is taken to hold what it held (as
 * git's index and rsync do; ctime and inode change when it is replaced). */
typedef struct fv_source_stat {
	uint64_t size, ino;
	int64_t mtime_ns, ctime_ns;
} fv_source_stat;

/* Was `source`, with this stat, stored (or found a duplicate) by an earlier
 * commit? Then its content is in the dataset. One short read transaction;
 * 0 when not, or when the dataset has no sources index. */
int fv_store_source_known(fv_store *s, const char *source, const fv_source_stat *st);

/* One record to add. Inputs are borrowed for the call; class_id is resolved
 * to an index at commit (a new id is appended, never renumbering others). */
typedef struct fv_store_put {
	const char *class_id;
	const char *class_name; /* for a new class; NULL = class_id */
	uint32_t split, encoding, width, height, channels;
	uint8_t hash[FV_HASH_LEN];
	const char *source;
	const uint8_t *data;
	size_t data_len;
	const fv_source_stat *src_stat; /* remembered in sources under source; may be NULL */
	int known;              /* fv_store_source_known said so: a duplicate, nothing read */
	/* results */
	uint64_t key;           /* the record's key (the existing one if duplicate) */
	uint32_t label;
	int duplicate;          /* 1: same content already stored; nothing added */
} fv_store_put;

/* A batch committed in one transaction: classes first (in the order given,
 * so new datasets get the indices their source implies), then items, then the
 * rejected count; all or nothing. */
typedef struct fv_store_batch {
	const char *const *class_ids;   /* may be NULL */
	const char *const *class_names; /* may be NULL (names = ids) */
	size_t nclasses;
	fv_store_put *items;
	size_t n;
	uint64_t rejected;
	/* results */
	uint64_t version, added, duplicates;
} fv_store_batch;

/* Commit b in one write transaction. On MDB_MAP_FULL the transaction is
 * aborted, the map doubled and the batch retried, so the caller never sees
 * it. Returns 0, FV_E_LMDB, or ENOMEM; on failure nothing of b is stored. */
int fv_store_commit(fv_store *s, fv_store_batch *b);
/* Commit b[0..n) in one write transaction (one fsync: group commit), all
 * or nothing. Each batch still bumps the version on its own, so records
 * and b[i].version are what n commits one by one would give; readers see
 * only the state after the last. */
int fv_store_commit_many(fv_store *s, fv_store_batch *b, size_t n);

/* The same, one step at a time (fv_store_commit is built on these; tests use
 * them to hold a write txn open). A step that finds the map full returns
 * FV_E_TOOBIG: abort, fv_store_grow (doubles the map; no txn of s may be
 * open), and redo the whole transaction. */
int fv_store_write_begin(fv_store *s, fv_store_wtxn **w);
int fv_store_write_class(fv_store_wtxn *w, const char *id, const char *name, uint32_t *index);
int fv_store_write_put(fv_store_wtxn *w, fv_store_put *p);
/* End one batch inside the transaction: add `rejected` to the count and
 * bump the version if anything was added or a class made since the last
 * step; the records put after it get the next version. Returns the
 * version. */
uint64_t fv_store_write_step(fv_store_wtxn *w, uint64_t rejected);
/* A last step (as fv_store_write_step), then write meta and commit.
 * *version (may be NULL) gets the dataset version. NULLs *w, also on
 * failure (the txn is then aborted). */
int fv_store_write_commit(fv_store_wtxn **w, uint64_t rejected, uint64_t *version);
void fv_store_write_abort(fv_store_wtxn **w);
int fv_store_grow(fv_store *s);

#endif
