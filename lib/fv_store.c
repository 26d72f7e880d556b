/* fv_store.c — the LMDB dataset (see fv_store.h for the layout and rules).
 *
 * A process-wide rwlock guards the mapping: every transaction holds it shared,
 * and the rare remap (our own growth, or following another process's growth
 * after MDB_MAP_RESIZED) takes it exclusively, because LMDB requires that no
 * transaction of this process is open while the map size changes. */
#include "fv_store.h"

#include <errno.h>
#include <lmdb.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fv_error.h"
#include "fv_json.h"
#include "fovea.pb-c.h"

#define DEFAULT_MAPSIZE ((size_t)256 << 20)
#define MAX_MAPSIZE ((size_t)1 << 44) /* 16 TiB: growth stops there */

struct fv_store {
	MDB_env *env;
	MDB_dbi records, classes, hashes, meta, sources;
	int has_sources; /* a read-only open of a dataset from before the index: 0 */
	int flags;
	int unsynced;    /* FV_STORE_LAZYMETA: a commit since the last fv_store_sync */
	char *dir;
	pthread_rwlock_t lock;
};

struct fv_store_rtxn {
	fv_store *s;
	MDB_txn *txn;
};

struct fv_store_wtxn {
	fv_store *s;
	MDB_txn *txn;
	fv_store_meta m;
	fv_class *cls;
	uint8_t *dirty;
	uint32_t ncls, cap;
	uint64_t added;
	int new_classes;
	/* class id -> index: open addressing, slot = index + 1 (0 free), at most
	 * half full; every put looks its class up (21,841 for ImageNet-21k) */
	uint32_t *slot, nslot;
};

static const char *split_names[FV_SPLITS] = { "train", "val", "test" };

/* LMDB failure -> our code, with the directory and step named. A full map is
 * FV_E_TOOBIG so fv_store_commit can grow and retry. */
static int lerr(const fv_store *s, int rc, const char *what)
{
	struct statvfs vfs;
	if (rc == MDB_MAP_FULL)
		return fv_err_set(FV_E_TOOBIG, "%s: %s: map full", s->dir, what);
	/* a full disk, said so (LMDB reports a short write as EIO) */
	if (rc == ENOSPC || rc == EDQUOT || rc == EIO) {
		int got = !statvfs(s->dir, &vfs);
		double free_mb = got ? (double)vfs.f_bavail * vfs.f_frsize / (1 << 20) : 0;
		if (rc != EIO || (got && free_mb < 16))
			return fv_err_set(rc == EDQUOT ? EDQUOT : ENOSPC, "%s: %s: %s (%.1f MB free)",
					  s->dir, what, rc == EDQUOT ? "disk quota exceeded"
								 : "no space left on the device", free_mb);
	}
	return fv_err_set(FV_E_LMDB, "%s: %s: %s", s->dir, what, mdb_strerror(rc));
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int mkdirs(const char *dir)
{
	char buf[4096];
	size_t len = strlen(dir);
	if (len >= sizeof buf)
		return ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0775) && errno != EEXIST)
			return errno;
		*p = '/';
	}
	if (mkdir(buf, 0775) && errno != EEXIST)
		return errno;
	return 0;
}

/* ---------------------------------------------------------------- txns */

static int txn_begin(fv_store *s, unsigned flags, MDB_txn **t)
{
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&s->lock);
		int rc = mdb_txn_begin(s->env, NULL, flags, t);
		if (!rc)
			return 0;
		pthread_rwlock_unlock(&s->lock);
		if (rc != MDB_MAP_RESIZED || tries > 8)
			return lerr(s, rc, "begin transaction");
		/* another process grew the map: adopt its size */
		pthread_rwlock_wrlock(&s->lock);
		rc = mdb_env_set_mapsize(s->env, 0);
		pthread_rwlock_unlock(&s->lock);
		if (rc)
			return lerr(s, rc, "follow map growth");
	}
}

static void txn_end(fv_store *s, MDB_txn *t, int commit, int *rc)
{
	int r = commit ? mdb_txn_commit(t) : (mdb_txn_abort(t), 0);
	pthread_rwlock_unlock(&s->lock);
	if (r && rc && !*rc)
		*rc = lerr(s, r, "commit");
}

static int meta_get(fv_store *s, MDB_txn *t, const char *name, uint64_t *v)
{
	MDB_val k = { strlen(name), (void *)name }, d;
	int rc = mdb_get(t, s->meta, &k, &d);
	*v = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return lerr(s, rc, "read meta");
	if (d.mv_size != 8)
		return fv_err_set(FV_E_CORRUPT, "%s: meta '%s' has %zu bytes", s->dir, name, d.mv_size);
	*v = rd64(d.mv_data);
	return 0;
}

static int meta_put(fv_store *s, MDB_txn *t, const char *name, uint64_t v)
{
	uint8_t b[8];
	be64(b, v);
	MDB_val k = { strlen(name), (void *)name }, d = { 8, b };
	int rc = mdb_put(t, s->meta, &k, &d, 0);
	return rc ? lerr(s, rc, "write meta") : 0;
}

static int meta_read(fv_store *s, MDB_txn *t, fv_store_meta *m)
{
	uint64_t cls = 0;
	int rc;
	memset(m, 0, sizeof *m);
	if ((rc = meta_get(s, t, "schema", &m->schema)) || (rc = meta_get(s, t, "version", &m->version)) ||
	    (rc = meta_get(s, t, "records", &m->records)) || (rc = meta_get(s, t, "classes", &cls)) ||
	    (rc = meta_get(s, t, "duplicates", &m->duplicates)) ||
	    (rc = meta_get(s, t, "rejected", &m->rejected)) ||
	    (rc = meta_get(s, t, "next_key", &m->next_key)))
		return rc;
	for (int i = 0; i < FV_SPLITS; i++)
		if ((rc = meta_get(s, t, split_names[i], &m->split[i])))
			return rc;
	m->classes = (uint32_t)cls;
	return 0;
}

static int meta_write(fv_store *s, MDB_txn *t, const fv_store_meta *m)
{
	int rc;
	if ((rc = meta_put(s, t, "schema", m->schema)) || (rc = meta_put(s, t, "version", m->version)) ||
	    (rc = meta_put(s, t, "records", m->records)) || (rc = meta_put(s, t, "classes", m->classes)) ||
	    (rc = meta_put(s, t, "duplicates", m->duplicates)) ||
	    (rc = meta_put(s, t, "rejected", m->rejected)) ||
	    (rc = meta_put(s, t, "next_key", m->next_key)))
		return rc;
	for (int i = 0; i < FV_SPLITS; i++)
		if ((rc = meta_put(s, t, split_names[i], m->split[i])))
			return rc;
	return 0;
}

/* ---------------------------------------------------------------- open */

static int open_dbs(fv_store *s)
{
	MDB_txn *t;
	int ro = s->flags & FV_STORE_RDONLY;
	unsigned f = ro ? 0 : MDB_CREATE;
	int rc = txn_begin(s, ro ? MDB_RDONLY : 0, &t);
	if (rc)
		return rc;
	int r;
	if ((r = mdb_dbi_open(t, "records", f, &s->records)) ||
	    (r = mdb_dbi_open(t, "classes", f, &s->classes)) ||
	    (r = mdb_dbi_open(t, "hashes", f, &s->hashes)) ||
	    (r = mdb_dbi_open(t, "meta", f, &s->meta))) {
		rc = r == MDB_NOTFOUND ? fv_err_set(FV_E_NOTFOUND, "%s: not a fovea dataset", s->dir)
				       : lerr(s, r, "open databases");
		goto out;
	}
	if (!(r = mdb_dbi_open(t, "sources", f, &s->sources)))
		s->has_sources = 1;
	else if (r != MDB_NOTFOUND) {
		rc = lerr(s, r, "open databases");
		goto out;
	}
	uint64_t schema;
	if ((rc = meta_get(s, t, "schema", &schema)))
		goto out;
	if (!schema && !ro)
		rc = meta_put(s, t, "schema", FV_STORE_SCHEMA);
	else if (schema != FV_STORE_SCHEMA && !(ro && !schema))
		rc = fv_err_set(FV_E_MISMATCH, "%s: dataset schema %llu, this build reads %d", s->dir,
				(unsigned long long)schema, FV_STORE_SCHEMA);
out:
	txn_end(s, t, !rc, &rc);
	return rc;
}

int fv_store_open(const char *dir, int flags, size_t mapsize, fv_store **out)
{
	char path[4200];
	struct stat st;
	int rc = 0, exists;
	fv_store *s = calloc(1, sizeof *s);

	*out = NULL;
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return ENOMEM;
	}
	s->flags = flags;
	pthread_rwlock_init(&s->lock, NULL);
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	exists = !stat(path, &st);
	if (!exists && !(flags & FV_STORE_CREATE)) {
		rc = fv_err_set(FV_E_NOTFOUND, "%s: no dataset here (create one with fovea ingest)", dir);
		goto out;
	}
	if (!exists && (rc = mkdirs(dir))) {
		rc = fv_err_set(rc, "%s: cannot create: %s", dir, strerror(rc));
		goto out;
	}
	int r = mdb_env_create(&s->env);
	if (!r)
		r = mdb_env_set_maxdbs(s->env, 8);
	if (!r && !exists)
		r = mdb_env_set_mapsize(s->env, mapsize ? mapsize : DEFAULT_MAPSIZE);
	unsigned ef = MDB_NOTLS;
	if (flags & FV_STORE_RDONLY)
		ef |= MDB_RDONLY;
	if (flags & FV_STORE_NOSYNC)
		ef |= MDB_NOSYNC;
	else if ((flags & FV_STORE_LAZYMETA) && !(flags & FV_STORE_RDONLY))
		ef |= MDB_NOMETASYNC;
	if (!r)
		r = mdb_env_open(s->env, dir, ef, 0664);
	if (r) {
		rc = lerr(s, r, "open");
		goto out;
	}
	if (!(flags & FV_STORE_RDONLY)) {
		int dead; /* reader slots of killed processes would pin old pages */
		mdb_reader_check(s->env, &dead);
	}
	rc = open_dbs(s);
out:
	if (rc)
		fv_store_close(&s);
	*out = s;
	return rc;
}

int fv_store_sync(fv_store *s)
{
	if (s->flags & FV_STORE_NOSYNC)
		return 0; /* asked for none */
	int r = mdb_env_sync(s->env, 1);
	if (!r)
		s->unsynced = 0;
	return r ? lerr(s, r, "sync") : 0;
}

void fv_store_close(fv_store **sp)
{
	fv_store *s = *sp;
	if (!s)
		return;
	/* the last commit's meta page (the caller's own sync reported errors) */
	if (s->env && s->unsynced && (s->flags & FV_STORE_LAZYMETA) && !(s->flags & FV_STORE_NOSYNC))
		mdb_env_sync(s->env, 1);
	if (s->env)
		mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->lock);
	free(s->dir);
	free(s);
	*sp = NULL;
}

const char *fv_store_dir(const fv_store *s)
{
	return s->dir;
}

size_t fv_store_mapsize(const fv_store *s)
{
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	return info.me_mapsize;
}

int fv_store_grow(fv_store *s)
{
	size_t cur = fv_store_mapsize(s);
	if (cur >= MAX_MAPSIZE)
		return fv_err_set(FV_E_TOOBIG, "%s: dataset map would pass %zu bytes", s->dir, cur);
	pthread_rwlock_wrlock(&s->lock);
	int r = mdb_env_set_mapsize(s->env, cur * 2);
	pthread_rwlock_unlock(&s->lock);
	return r ? lerr(s, r, "grow map") : 0;
}

/* ---------------------------------------------------------------- readers */

int fv_store_meta_get(fv_store *s, fv_store_meta *m)
{
	MDB_txn *t;
	int rc = txn_begin(s, MDB_RDONLY, &t);
	if (rc)
		return rc;
	rc = meta_read(s, t, m);
	txn_end(s, t, 0, NULL);
	return rc;
}

void fv_store_classes_free(fv_class **cp, uint32_t n)
{
	fv_class *c = *cp;
	if (!c)
		return;
	for (uint32_t i = 0; i < n; i++) {
		free(c[i].id);
		free(c[i].name);
	}
	free(c);
	*cp = NULL;
}

/* All classes of txn t into a fresh array. */
static int classes_load(fv_store *s, MDB_txn *t, fv_class **out, uint32_t *n, uint32_t *cap)
{
	MDB_cursor *c;
	MDB_val k, d;
	fv_class *cls = NULL;
	uint32_t cnt = 0, cp = 0;
	int r = mdb_cursor_open(t, s->classes, &c), rc = 0;
	if (r)
		return lerr(s, r, "read classes");
	for (r = mdb_cursor_get(c, &k, &d, MDB_FIRST); !r; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		Fovea__ClassInfo *ci = fovea__class_info__unpack(NULL, d.mv_size, d.mv_data);
		if (!ci || ci->index != cnt) {
			if (ci)
				fovea__class_info__free_unpacked(ci, NULL);
			rc = fv_err_set(FV_E_CORRUPT, "%s: class %u is damaged", s->dir, cnt);
			break;
		}
		if (cnt == cp) {
			cp = cp ? cp * 2 : 16;
			fv_class *g = realloc(cls, cp * sizeof *cls);
			if (!g) {
				fovea__class_info__free_unpacked(ci, NULL);
				rc = ENOMEM;
				break;
			}
			cls = g;
		}
		fv_class *x = &cls[cnt];
		x->index = cnt;
		x->id = strdup(ci->id);
		x->name = strdup(ci->name);
		x->split[0] = ci->train;
		x->split[1] = ci->val;
		x->split[2] = ci->test;
		fovea__class_info__free_unpacked(ci, NULL);
		cnt++;
		if (!x->id || !x->name) {
			rc = ENOMEM;
			break;
		}
	}
	if (!rc && r != MDB_NOTFOUND)
		rc = lerr(s, r, "read classes");
	mdb_cursor_close(c);
	if (rc)
		fv_store_classes_free(&cls, cnt);
	*out = cls;
	*n = rc ? 0 : cnt;
	if (cap)
		*cap = cp;
	return rc;
}

int fv_store_classes(fv_store *s, fv_class **out, uint32_t *n)
{
	MDB_txn *t;
	int rc = txn_begin(s, MDB_RDONLY, &t);
	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	rc = classes_load(s, t, out, n, NULL);
	txn_end(s, t, 0, NULL);
	return rc;
}

int fv_store_split_index(fv_store *s, uint32_t split, uint64_t **keys, uint32_t **labels,
			 size_t *n, uint64_t *version)
{
	MDB_txn *t;
	MDB_cursor *c = NULL;
	MDB_val k, d;
	fv_store_meta m;
	uint64_t *ks = NULL;
	uint32_t *ls = NULL;
	size_t cnt = 0, cap;
	int r, rc = txn_begin(s, MDB_RDONLY, &t);

	*keys = NULL;
	if (labels)
		*labels = NULL;
	*n = 0;
	if (rc)
		return rc;
	if ((rc = meta_read(s, t, &m)))
		goto out;
	cap = split < FV_SPLITS && m.split[split] ? m.split[split] : 1;
	ks = malloc(cap * sizeof *ks);
	ls = malloc(cap * sizeof *ls);
	if (!ks || !ls) {
		rc = ENOMEM;
		goto out;
	}
	if ((r = mdb_cursor_open(t, s->records, &c))) {
		rc = lerr(s, r, "read records");
		goto out;
	}
	for (r = mdb_cursor_get(c, &k, &d, MDB_FIRST); !r; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		fv_record rec;
		if (k.mv_size != 8 || fv_record_parse(d.mv_data, d.mv_size, &rec)) {
			rc = fv_err_set(FV_E_CORRUPT, "%s: a record is damaged", s->dir);
			goto out;
		}
		if (rec.split != split)
			continue;
		if (cnt == cap) { /* meta and records disagree; cope anyway */
			cap *= 2;
			uint64_t *gk = realloc(ks, cap * sizeof *ks);
			if (gk)
				ks = gk;
			uint32_t *gl = realloc(ls, cap * sizeof *ls);
			if (gl)
				ls = gl;
			if (!gk || !gl) {
				rc = ENOMEM;
				goto out;
			}
		}
		ks[cnt] = rd64(k.mv_data);
		ls[cnt++] = rec.label;
	}
	if (r != MDB_NOTFOUND)
		rc = lerr(s, r, "read records");
	if (version)
		*version = m.version;
out:
	if (c)
		mdb_cursor_close(c);
	txn_end(s, t, 0, NULL);
	if (rc) {
		free(ks);
		free(ls);
		return rc;
	}
	*keys = ks;
	if (labels)
		*labels = ls;
	else
		free(ls);
	*n = cnt;
	return 0;
}

int fv_store_read_begin(fv_store *s, fv_store_rtxn **out)
{
	fv_store_rtxn *t = calloc(1, sizeof *t);
	*out = NULL;
	if (!t)
		return ENOMEM;
	int rc = txn_begin(s, MDB_RDONLY, &t->txn);
	if (rc) {
		free(t);
		return rc;
	}
	t->s = s;
	*out = t;
	return 0;
}

void fv_store_read_end(fv_store_rtxn **tp)
{
	fv_store_rtxn *t = *tp;
	if (!t)
		return;
	txn_end(t->s, t->txn, 0, NULL);
	free(t);
	*tp = NULL;
}

int fv_store_read_meta(fv_store_rtxn *t, fv_store_meta *m)
{
	return meta_read(t->s, t->txn, m);
}

int fv_store_read_classes(fv_store_rtxn *t, fv_class **out, uint32_t *n)
{
	return classes_load(t->s, t->txn, out, n, NULL);
}

int fv_store_get(fv_store_rtxn *t, uint64_t key, fv_record *r)
{
	uint8_t kb[8];
	be64(kb, key);
	MDB_val k = { 8, kb }, d;
	int rc = mdb_get(t->txn, t->s->records, &k, &d);
	if (rc == MDB_NOTFOUND)
		return fv_err_set(FV_E_NOTFOUND, "%s: no record %llu", t->s->dir, (unsigned long long)key);
	if (rc)
		return lerr(t->s, rc, "read record");
	if (fv_record_parse(d.mv_data, d.mv_size, r))
		return fv_err_set(FV_E_CORRUPT, "%s: record %llu is damaged", t->s->dir,
				  (unsigned long long)key);
	r->key = key;
	return 0;
}

/* ---------------------------------------------------------------- parse */

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* The protobuf wire format of fovea.Record, read in place so `data` stays a
 * pointer into the map (protobuf-c's unpack would copy every image). */
int fv_record_parse(const void *buf, size_t len, fv_record *r)
{
	const uint8_t *p = buf, *end;
	memset(r, 0, sizeof *r);
	if (!len)
		return 0; /* an empty message: every field at its default */
	end = p + len;
	while (p < end) {
		uint64_t tag, v;
		if (varint(&p, end, &tag))
			return FV_E_CORRUPT;
		unsigned field = (unsigned)(tag >> 3), wt = tag & 7;
		if (wt == 0) {
			if (varint(&p, end, &v))
				return FV_E_CORRUPT;
			switch (field) {
			case 1: r->label = (uint32_t)v; break;
			case 2: r->split = (uint32_t)v; break;
			case 3: r->encoding = (uint32_t)v; break;
			case 4: r->width = (uint32_t)v; break;
			case 5: r->height = (uint32_t)v; break;
			case 6: r->channels = (uint32_t)v; break;
			case 10: r->dataset_version = v; break;
			default: break;
			}
		} else if (wt == 2) {
			if (varint(&p, end, &v) || v > (uint64_t)(end - p))
				return FV_E_CORRUPT;
			if (field == 7) {
				r->hash = p;
				r->hash_len = v;
			} else if (field == 8) {
				r->source = (const char *)p;
				r->source_len = v;
			} else if (field == 9) {
				r->data = p;
				r->data_len = v;
			}
			p += v;
		} else if (wt == 1 || wt == 5) {
			size_t sz = wt == 1 ? 8 : 4;
			if ((size_t)(end - p) < sz)
				return FV_E_CORRUPT;
			p += sz;
		} else {
			return FV_E_CORRUPT;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- writer */

static uint32_t id_slot(const fv_store_wtxn *w, const char *id)
{
	return (uint32_t)XXH3_64bits(id, strlen(id)) & (w->nslot - 1);
}

static void slot_put(fv_store_wtxn *w, uint32_t i)
{
	uint32_t h = id_slot(w, w->cls[i].id);
	while (w->slot[h])
		h = (h + 1) & (w->nslot - 1);
	w->slot[h] = i + 1;
}

/* Index class i, the newest (0..i-1 are in), growing the table to stay at
 * most half full. */
static int class_index_add(fv_store_wtxn *w, uint32_t i)
{
	if (2 * (i + 1) > w->nslot) {
		uint32_t n = w->nslot ? 2 * w->nslot : 64;
		uint32_t *g = calloc(n, sizeof *g);
		if (!g)
			return ENOMEM;
		free(w->slot);
		w->slot = g;
		w->nslot = n;
		for (uint32_t k = 0; k < i; k++)
			slot_put(w, k);
	}
	slot_put(w, i);
	return 0;
}

int fv_store_write_begin(fv_store *s, fv_store_wtxn **out)
{
	fv_store_wtxn *w = calloc(1, sizeof *w);
	int rc;
	*out = NULL;
	if (!w)
		return ENOMEM;
	if (s->flags & FV_STORE_RDONLY) {
		free(w);
		return fv_err_set(EROFS, "%s: opened read-only", s->dir);
	}
	if ((rc = txn_begin(s, 0, &w->txn))) {
		free(w);
		return rc;
	}
	w->s = s;
	if ((rc = meta_read(s, w->txn, &w->m)) ||
	    (rc = classes_load(s, w->txn, &w->cls, &w->ncls, &w->cap)))
		goto out;
	if (!(w->dirty = calloc(w->cap ? w->cap : 1, 1)))
		rc = ENOMEM;
	for (uint32_t i = 0; i < w->ncls && !rc; i++)
		rc = class_index_add(w, i);
	w->m.schema = FV_STORE_SCHEMA;
out:
	if (rc)
		fv_store_write_abort(&w);
	*out = w;
	return rc;
}

void fv_store_write_abort(fv_store_wtxn **wp)
{
	fv_store_wtxn *w = *wp;
	if (!w)
		return;
	if (w->txn)
		txn_end(w->s, w->txn, 0, NULL);
	fv_store_classes_free(&w->cls, w->ncls);
	free(w->dirty);
	free(w->slot);
	free(w);
	*wp = NULL;
}

static int class_find(const fv_store_wtxn *w, const char *id, uint32_t *index)
{
	if (!w->nslot)
		return 0;
	for (uint32_t h = id_slot(w, id);; h = (h + 1) & (w->nslot - 1)) {
		uint32_t k = w->slot[h];
		if (!k)
			return 0;
		if (!strcmp(w->cls[k - 1].id, id)) {
			*index = k - 1;
			return 1;
		}
	}
}

int fv_store_write_class(fv_store_wtxn *w, const char *id, const char *name, uint32_t *index)
{
	char *cid = NULL, *cname = NULL;
	/* ids and names are protobuf strings, so UTF-8: a Latin-1 folder name's
	 * bad bytes become U+FFFD (an id stored as it was before is still found) */
	if (class_find(w, id, index))
		return 0;
	if (fv_utf8_clean(id, &cid) || fv_utf8_clean(name ? name : id, &cname))
		goto nomem;
	if (cid && class_find(w, cid, index)) {
		free(cid);
		free(cname);
		return 0;
	}
	if (w->ncls == w->cap) {
		uint32_t cap = w->cap ? w->cap * 2 : 16;
		fv_class *g = realloc(w->cls, cap * sizeof *g);
		if (!g)
			goto nomem;
		w->cls = g;
		uint8_t *d = realloc(w->dirty, cap);
		if (!d)
			goto nomem;
		memset(d + w->cap, 0, cap - w->cap);
		w->dirty = d;
		w->cap = cap;
	}
	fv_class *c = &w->cls[w->ncls];
	memset(c, 0, sizeof *c);
	c->index = w->ncls;
	c->id = cid ? cid : strdup(id);
	c->name = cname ? cname : strdup(name ? name : id);
	cid = cname = NULL;
	if (!c->id || !c->name) {
		free(c->id);
		free(c->name);
		return ENOMEM;
	}
	if (class_index_add(w, w->ncls)) {
		free(c->id);
		free(c->name);
		return ENOMEM;
	}
	w->dirty[w->ncls] = 1;
	w->new_classes = 1;
	*index = w->ncls++;
	return 0;
nomem:
	free(cid);
	free(cname);
	return ENOMEM;
}

/* ---------------------------------------------------------------- sources */

#define SOURCE_VAL 40 /* size, ino, mtime, ctime, record key: 8 bytes each, big-endian */

static void source_key(const char *source, uint8_t k[FV_HASH_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits(source, strlen(source)));
	memcpy(k, c.digest, FV_HASH_LEN);
}

int fv_store_source_known(fv_store *s, const char *source, const fv_source_stat *st)
{
	uint8_t k[FV_HASH_LEN];
	MDB_txn *t;
	int known = 0;
	if (!s->has_sources || txn_begin(s, MDB_RDONLY, &t))
		return 0;
	source_key(source, k);
	MDB_val kv = { FV_HASH_LEN, k }, v;
	if (!mdb_get(t, s->sources, &kv, &v) && v.mv_size == SOURCE_VAL) {
		const uint8_t *b = v.mv_data;
		known = rd64(b) == st->size && rd64(b + 8) == st->ino &&
			rd64(b + 16) == (uint64_t)st->mtime_ns && rd64(b + 24) == (uint64_t)st->ctime_ns;
	}
	txn_end(s, t, 0, NULL);
	return known;
}

/* Remember p's source file as holding record `key`. */
static int source_put(fv_store_wtxn *w, const fv_store_put *p, uint64_t key)
{
	fv_store *s = w->s;
	uint8_t k[FV_HASH_LEN], b[SOURCE_VAL];
	if (!p->src_stat || !p->source || !s->has_sources)
		return 0;
	source_key(p->source, k);
	be64(b, p->src_stat->size);
	be64(b + 8, p->src_stat->ino);
	be64(b + 16, (uint64_t)p->src_stat->mtime_ns);
	be64(b + 24, (uint64_t)p->src_stat->ctime_ns);
	be64(b + 32, key);
	MDB_val kv = { FV_HASH_LEN, k }, v = { SOURCE_VAL, b };
	int r = mdb_put(w->txn, s->sources, &kv, &v, 0);
	return r ? lerr(s, r, "write source") : 0;
}

int fv_store_write_put(fv_store_wtxn *w, fv_store_put *p)
{
	fv_store *s = w->s;
	uint8_t kb[8];
	int r, rc;

	p->duplicate = 0;
	if (p->split >= FV_SPLITS)
		return fv_err_set(EINVAL, "%s: split %u out of range", p->source, p->split);
	if ((rc = fv_store_write_class(w, p->class_id, p->class_name, &p->label)))
		return rc;
	if (p->known) { /* its content is stored already, under the key remembered */
		uint8_t k[FV_HASH_LEN];
		source_key(p->source ? p->source : "", k);
		MDB_val kv = { FV_HASH_LEN, k }, v;
		p->duplicate = 1;
		p->key = s->has_sources && !mdb_get(w->txn, s->sources, &kv, &v) && v.mv_size == SOURCE_VAL
				 ? rd64((const uint8_t *)v.mv_data + 32) : 0;
		w->m.duplicates++;
		return 0;
	}
	MDB_val hk = { FV_HASH_LEN, p->hash }, hv;
	r = mdb_get(w->txn, s->hashes, &hk, &hv);
	if (!r && hv.mv_size == 8) {
		p->duplicate = 1;
		p->key = rd64(hv.mv_data);
		w->m.duplicates++;
		return source_put(w, p, p->key);
	}
	if (r && r != MDB_NOTFOUND)
		return lerr(s, r, "read hashes");

	Fovea__Record rec = FOVEA__RECORD__INIT;
	rec.label = p->label;
	rec.split = (Fovea__Split)p->split;
	rec.encoding = (Fovea__Encoding)p->encoding;
	rec.width = p->width;
	rec.height = p->height;
	rec.channels = p->channels;
	rec.hash.data = p->hash;
	rec.hash.len = FV_HASH_LEN;
	char *clean; /* a protobuf string holds UTF-8: a Latin-1 path's bad bytes become U+FFFD */
	if ((rc = fv_utf8_clean(p->source ? p->source : "", &clean)))
		return rc;
	rec.source = clean ? clean : (char *)(p->source ? p->source : "");
	rec.data.data = (uint8_t *)p->data;
	rec.data.len = p->data_len;
	rec.dataset_version = w->m.version + 1;

	p->key = w->m.next_key;
	be64(kb, p->key);
	MDB_val k = { 8, kb }, d = { fovea__record__get_packed_size(&rec), NULL };
	/* pack straight into the map: one copy of the image, not two */
	if ((r = mdb_put(w->txn, s->records, &k, &d, MDB_RESERVE | MDB_APPEND))) {
		free(clean);
		return lerr(s, r, "write record");
	}
	fovea__record__pack(&rec, d.mv_data);
	free(clean);
	hv.mv_size = 8;
	hv.mv_data = kb;
	if ((r = mdb_put(w->txn, s->hashes, &hk, &hv, MDB_NOOVERWRITE)))
		return lerr(s, r, "write hash");
	if ((rc = source_put(w, p, p->key)))
		return rc;
	w->m.next_key++;
	w->m.records++;
	w->m.split[p->split]++;
	w->cls[p->label].split[p->split]++;
	w->dirty[p->label] = 1;
	w->added++;
	return 0;
}

static int classes_write(fv_store_wtxn *w)
{
	for (uint32_t i = 0; i < w->ncls; i++) {
		if (!w->dirty[i])
			continue;
		fv_class *c = &w->cls[i];
		Fovea__ClassInfo ci = FOVEA__CLASS_INFO__INIT;
		uint8_t kb[4] = { i >> 24, i >> 16, i >> 8, i };
		ci.index = i;
		ci.id = c->id;
		ci.name = c->name;
		ci.train = c->split[0];
		ci.val = c->split[1];
		ci.test = c->split[2];
		MDB_val k = { 4, kb }, d = { fovea__class_info__get_packed_size(&ci), NULL };
		int r = mdb_put(w->txn, w->s->classes, &k, &d, MDB_RESERVE);
		if (r)
			return lerr(w->s, r, "write class");
		fovea__class_info__pack(&ci, d.mv_data);
	}
	return 0;
}

uint64_t fv_store_write_step(fv_store_wtxn *w, uint64_t rejected)
{
	w->m.rejected += rejected;
	if (w->added || w->new_classes)
		w->m.version++;
	w->added = 0;
	w->new_classes = 0;
	return w->m.version;
}

int fv_store_write_commit(fv_store_wtxn **wp, uint64_t rejected, uint64_t *version)
{
	fv_store_wtxn *w = *wp;
	int rc;
	fv_store_write_step(w, rejected);
	w->m.classes = w->ncls;
	if ((rc = classes_write(w)) || (rc = meta_write(w->s, w->txn, &w->m)))
		goto out;
	txn_end(w->s, w->txn, 1, &rc);
	w->txn = NULL;
	if (!rc)
		w->s->unsynced = 1;
	if (!rc && version)
		*version = w->m.version;
out:
	fv_store_write_abort(wp);
	return rc;
}

/* Batch b's classes and items into w, then its version step. */
static int batch_write(fv_store_wtxn *w, fv_store_batch *b)
{
	uint32_t idx;
	int rc = 0;
	b->added = b->duplicates = 0;
	for (size_t i = 0; i < b->nclasses && !rc; i++)
		rc = fv_store_write_class(w, b->class_ids[i], b->class_names ? b->class_names[i] : NULL,
					  &idx);
	for (size_t i = 0; i < b->n && !rc; i++) {
		rc = fv_store_write_put(w, &b->items[i]);
		if (!rc && b->items[i].duplicate)
			b->duplicates++;
		else if (!rc)
			b->added++;
	}
	if (!rc)
		b->version = fv_store_write_step(w, b->rejected);
	return rc;
}

static int commit_once(fv_store *s, fv_store_batch *b, size_t n)
{
	fv_store_wtxn *w;
	int rc = fv_store_write_begin(s, &w);
	for (size_t i = 0; i < n && !rc; i++)
		rc = batch_write(w, &b[i]);
	if (rc) {
		fv_store_write_abort(&w);
		return rc;
	}
	return fv_store_write_commit(&w, 0, NULL);
}

int fv_store_commit(fv_store *s, fv_store_batch *b)
{
	return fv_store_commit_many(s, b, 1);
}

int fv_store_commit_many(fv_store *s, fv_store_batch *b, size_t n)
{
	for (;;) {
		int rc = commit_once(s, b, n);
		if (rc != FV_E_TOOBIG)
			return rc;
		if ((rc = fv_store_grow(s)))
			return rc;
	}
}
