/* nn/optim/ckpt.c — writing, verifying and loading checkpoint files (format
 * in nn/ckpt.h). Writing serializes twice through one emitter: a counting
 * pass to learn the file size stored in the preamble, then the real pass
 * into a temp file. Opening maps (or reads) the whole file, checks magic, size,
 * checksum and version in an order that names the real fault, then indexes
 * tensors and blobs with bounds checks, so garbage never crashes a reader. */
#include "nn/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fv_error.h"
#include "fv_file.h"
#include "fv_log.h"

/* Data is written and read with memcpy in host order; a big-endian port
 * would byte-swap in put/get and in the tensor copies. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fovea checkpoints assume a little-endian host"
#endif

static const char MAGIC[8] = "FVCKPT\0\0";
enum { PREAMBLE = 24, ALIGN = 64, MAX_NAME = 4096, MAX_DIMS = 8 };

/* ==== writing ============================================================ */

typedef struct writer {
	FILE *f;        /* NULL: counting pass */
	uint64_t off;
	uLong crc;
	int err;
} writer;

static void put(writer *w, const void *p, size_t len)
{
	if (w->f && !w->err && len) { /* crc32(.., NULL, 0) would reset the sum */
		w->crc = crc32_z(w->crc, p, len);
		if (fwrite(p, 1, len, w->f) != len)
			w->err = errno ? errno : EIO;
	}
	w->off += len;
}

static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(writer *w, uint64_t v) { put(w, &v, 8); }

static void put_str(writer *w, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	put_u32(w, (uint32_t)len);
	put(w, s ? s : "", len + 1);
}

static void put_pad(writer *w)
{
	static const char zeros[ALIGN];
	put(w, zeros, (ALIGN - w->off % ALIGN) % ALIGN);
}

static void emit_header(writer *w, const fv_ckpt_info *in)
{
	put_str(w, in->model);
	put_u32(w, in->in_c);
	put_u32(w, in->in_h);
	put_u32(w, in->in_w);
	put_u32(w, in->classes);
	put_u64(w, in->step);
	put(w, &in->epoch, 8);
	put_u64(w, in->dataset_version);
	put_u32(w, in->class_names ? in->classes : 0);
	for (int i = 0; in->class_names && i < in->classes; i++)
		put_str(w, in->class_names[i]);
	put_str(w, in->meta);
}

static void param_dims(const fv_param *p, int *ndim, int *dims)
{
	*ndim = p->ndim;
	memcpy(dims, p->dims, sizeof p->dims);
	if (p->ndim < 1) { /* a scalar or unset shape is stored as [numel] */
		*ndim = 1;
		dims[0] = (int)p->numel;
	}
}

static void emit(writer *w, uint64_t size, const fv_ckpt_info *info, const fv_param *params,
		 size_t n, const fv_ckpt_blob *blobs, size_t nblobs)
{
	writer hc = { 0 };
	emit_header(&hc, info);
	put(w, MAGIC, 8);
	put_u32(w, FV_CKPT_VERSION);
	put_u32(w, 0);
	put_u64(w, size);
	put_u32(w, (uint32_t)hc.off);
	emit_header(w, info);
	put_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		int ndim, dims[4];
		param_dims(&params[i], &ndim, dims);
		put_str(w, params[i].name);
		put_u32(w, 0);
		put_u32(w, ndim);
		for (int d = 0; d < ndim; d++)
			put_u32(w, dims[d]);
		put_u64(w, params[i].numel * sizeof(float));
		put_pad(w);
		put(w, params[i].data, params[i].numel * sizeof(float));
	}
	put_u32(w, (uint32_t)nblobs);
	for (size_t i = 0; i < nblobs; i++) {
		put_str(w, blobs[i].name);
		put_u64(w, blobs[i].len);
		put_pad(w);
		put(w, blobs[i].data, blobs[i].len);
	}
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Unique, sane names: a duplicate would make loading ambiguous. */
static int check_names(const char *path, const char **names, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!names[i] || !names[i][0] || strlen(names[i]) >= MAX_NAME)
			return fv_err_set(EINVAL, "%s: %s %zu has no name or one too long", path, what, i);
	qsort(names, n, sizeof *names, cmp_name);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i - 1], names[i]))
			return fv_err_set(FV_E_DUPLICATE, "%s: two %ss named \"%s\"", path, what, names[i]);
	return 0;
}

static int check_input(const char *path, const fv_ckpt_info *info, const fv_param *params,
		       size_t n, const fv_ckpt_blob *blobs, size_t nblobs)
{
	const char **names = malloc((n > nblobs ? n : nblobs) * sizeof *names + 1);
	int rc = 0;
	if (!names)
		return ENOMEM;
	if (info->classes < 0 || (info->class_names && !info->classes))
		rc = fv_err_set(EINVAL, "%s: bad class count %d", path, info->classes);
	for (int i = 0; !rc && info->class_names && i < info->classes; i++)
		if (!info->class_names[i])
			rc = fv_err_set(EINVAL, "%s: class name %d is NULL", path, i);
	for (size_t i = 0; !rc && i < n; i++) {
		const fv_param *p = &params[i];
		size_t numel = 1;
		for (int d = 0; d < p->ndim && d < 4; d++)
			numel *= p->dims[d] > 0 ? (size_t)p->dims[d] : 0;
		if ((!p->data && p->numel) || p->ndim > 4 || (p->ndim >= 1 && numel != p->numel))
			rc = fv_err_set(EINVAL, "%s: param \"%s\" has no data or dims that disagree "
					"with its %zu elements", path, p->name ? p->name : "?", p->numel);
		names[i] = p->name;
	}
	if (!rc)
		rc = check_names(path, names, n, "param");
	for (size_t i = 0; !rc && i < nblobs; i++) {
		if (!blobs[i].data && blobs[i].len)
			rc = fv_err_set(EINVAL, "%s: blob \"%s\" has no data", path, blobs[i].name);
		names[i] = blobs[i].name;
	}
	if (!rc)
		rc = check_names(path, names, nblobs, "blob");
	free(names);
	return rc;
}

static int temp_path(char *tmp, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');
	int dlen = slash ? (int)(slash - path + 1) : 0;
	const char *base = slash ? slash + 1 : path;
	int len = snprintf(tmp, cap, "%.*s.%s.tmp-%ld", dlen, path, base, (long)getpid());
	return len < 0 || (size_t)len >= cap ? ENAMETOOLONG : 0;
}

int fv_ckpt_write(const char *path, const fv_ckpt_info *info, const fv_param *params,
		  size_t n, const fv_ckpt_blob *blobs, size_t nblobs)
{
	static const fv_ckpt_info none;
	char tmp[4096];
	writer w = { 0 };
	int rc, fd = -1;

	if (!info)
		info = &none;
	if ((rc = check_input(path, info, params, n, blobs, nblobs)))
		return rc;
	if ((rc = temp_path(tmp, sizeof tmp, path)))
		return fv_err_set(rc, "%s: path too long", path);
	emit(&w, 0, info, params, n, blobs, nblobs);   /* counting pass */
	uint64_t size = w.off + 4;

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		rc = errno;
		return fv_err_set(rc, "%s: cannot create: %s", tmp, strerror(rc));
	}
	w = (writer){ .f = fdopen(fd, "w"), .crc = crc32_z(0, NULL, 0) };
	if (!w.f) {
		rc = errno;
		close(fd);
		goto out;
	}
	emit(&w, size, info, params, n, blobs, nblobs);
	uint32_t crc = (uint32_t)w.crc;
	put_u32(&w, crc);
	if (!(rc = w.err) && fflush(w.f))
		rc = errno;
	if (!rc && fsync(fileno(w.f)))
		rc = errno;
	if (fclose(w.f) && !rc)
		rc = errno;
	if (!rc && w.off != size)
		rc = fv_err_set(FV_E_INTERNAL, "%s: wrote %llu bytes, planned %llu", path,
				(unsigned long long)w.off, (unsigned long long)size);
	if (!rc && rename(tmp, path))
		rc = errno;
	if (!rc && (rc = fv_fsync_parent(path)))
		return fv_err_set(rc, "%s: fsync of its directory failed: %s", path, strerror(rc));
out:
	if (rc) {
		unlink(tmp);
		if (rc > 0)
			fv_err_set(rc, "%s: writing checkpoint failed: %s", path, strerror(rc));
	}
	return rc;
}

/* ==== reading ============================================================== */

typedef struct blob_ent {
	const char *name;
	const void *data;
	size_t len;
} blob_ent;

struct fv_ckpt {
	char *path;
	uint8_t *buf;
	int mapped;                 /* buf is an mmap of the file, not malloc'd */
	size_t size;
	fv_ckpt_info info;
	const char **class_names;
	char *meta_copy;            /* meta split into NUL-terminated key/value pairs */
	const char **meta_kv;       /* 2 * nmeta entries */
	size_t nmeta;
	fv_ckpt_tensor *tensors;    /* sorted by name */
	size_t ntensors;
	blob_ent *blobs;
	size_t nblobs;
};

typedef struct cursor {
	const uint8_t *b;
	size_t off, end;
	int bad;
} cursor;

static const void *take(cursor *c, size_t len)
{
	if (c->bad || len > c->end - c->off) {
		c->bad = 1;
		return NULL;
	}
	const void *p = c->b + c->off;
	c->off += len;
	return p;
}

static uint32_t get_u32(cursor *c)
{
	uint32_t v = 0;
	const void *p = take(c, 4);
	if (p)
		memcpy(&v, p, 4);
	return v;
}

static uint64_t get_u64(cursor *c)
{
	uint64_t v = 0;
	const void *p = take(c, 8);
	if (p)
		memcpy(&v, p, 8);
	return v;
}

static const char *get_str(cursor *c)
{
	uint32_t len = get_u32(c);
	const char *s = len < 1u << 30 ? take(c, (size_t)len + 1) : (c->bad = 1, NULL);
	if (s && (s[len] || memchr(s, 0, len)))
		c->bad = 1;
	return c->bad ? NULL : s;
}

static void get_pad(cursor *c)
{
	take(c, (ALIGN - c->off % ALIGN) % ALIGN);
}

static int malformed(const fv_ckpt *k, const char *what)
{
	return fv_err_set(FV_E_CORRUPT, "%s: malformed checkpoint (%s)", k->path, what);
}

static int parse_meta(fv_ckpt *k)
{
	const char *m = k->info.meta;
	size_t lines = 1;
	for (const char *p = m; *p; p++)
		lines += *p == '\n';
	if (!(k->meta_copy = strdup(m)) || !(k->meta_kv = calloc(2 * lines, sizeof(char *))))
		return ENOMEM;
	for (char *line = k->meta_copy, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		k->meta_kv[2 * k->nmeta] = line;
		k->meta_kv[2 * k->nmeta++ + 1] = eq + 1;
	}
	return 0;
}

static int parse_header(fv_ckpt *k, cursor *c)
{
	uint32_t hlen = get_u32(c);
	if (c->bad || hlen > c->end - c->off)
		return malformed(k, "header length");
	cursor h = { .b = c->b, .off = c->off, .end = c->off + hlen };
	c->off += hlen;
	fv_ckpt_info *in = &k->info;
	in->model = get_str(&h);
	in->in_c = (int)get_u32(&h);
	in->in_h = (int)get_u32(&h);
	in->in_w = (int)get_u32(&h);
	in->classes = (int)get_u32(&h);
	in->step = get_u64(&h);
	const void *e = take(&h, 8);
	if (e)
		memcpy(&in->epoch, e, 8);
	in->dataset_version = get_u64(&h);
	uint32_t nnames = get_u32(&h);
	if (h.bad || (nnames && (int)nnames != in->classes) || nnames > h.end - h.off)
		return malformed(k, "header");
	if (nnames) {
		if (!(k->class_names = calloc(nnames, sizeof(char *))))
			return ENOMEM;
		for (uint32_t i = 0; i < nnames; i++)
			k->class_names[i] = get_str(&h);
		in->class_names = k->class_names;
	}
	in->meta = get_str(&h);
	if (h.bad)
		return malformed(k, "header strings");
	return parse_meta(k);
}

static int cmp_tensor(const void *a, const void *b)
{
	return strcmp(((const fv_ckpt_tensor *)a)->name, ((const fv_ckpt_tensor *)b)->name);
}

static int parse_tensors(fv_ckpt *k, cursor *c)
{
	uint32_t n = get_u32(c);
	if (c->bad || n > (c->end - c->off) / 16)
		return malformed(k, "tensor count");
	if (!(k->tensors = calloc(n + 1, sizeof *k->tensors)))
		return ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		fv_ckpt_tensor *t = &k->tensors[i];
		t->name = get_str(c);
		uint32_t dtype = get_u32(c), ndim = get_u32(c);
		if (c->bad || dtype != 0 || ndim < 1 || ndim > MAX_DIMS)
			return malformed(k, "tensor entry");
		t->ndim = (int)ndim;
		uint64_t numel = 1;
		for (uint32_t d = 0; d < ndim; d++) {
			uint32_t v = get_u32(c);
			t->dims[d] = (int)v;
			/* numel * 4 must fit: a crafted size must not wrap to a small one */
			if (v > INT32_MAX || (v && numel > (UINT64_MAX >> 2) / v))
				c->bad = 1;
			else
				numel *= v;
		}
		uint64_t bytes = get_u64(c);
		if (c->bad || bytes != numel * 4)
			return malformed(k, "tensor shape");
		get_pad(c);
		t->numel = (size_t)numel;
		t->data = take(c, bytes);
		if (c->bad)
			return malformed(k, "tensor data");
		k->ntensors++;
	}
	qsort(k->tensors, n, sizeof *k->tensors, cmp_tensor);
	for (uint32_t i = 1; i < n; i++)
		if (!strcmp(k->tensors[i - 1].name, k->tensors[i].name))
			return malformed(k, "duplicate tensor name");
	return 0;
}

static int parse_blobs(fv_ckpt *k, cursor *c)
{
	uint32_t n = get_u32(c);
	if (c->bad || n > (c->end - c->off) / 12)
		return malformed(k, "blob count");
	if (!(k->blobs = calloc(n + 1, sizeof *k->blobs)))
		return ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		blob_ent *b = &k->blobs[i];
		b->name = get_str(c);
		uint64_t len = get_u64(c);
		get_pad(c);
		b->len = (size_t)len;
		b->data = take(c, len);
		if (c->bad)
			return malformed(k, "blob entry");
		k->nblobs++;
	}
	return c->off == c->end ? 0 : malformed(k, "trailing bytes");
}

/* Magic, then size (names truncation), then checksum (names corruption),
 * then version: the preamble and trailing CRC are the same in every format
 * version, so a newer file is recognised as newer, not as corrupt. */
static int verify(fv_ckpt *k)
{
	const uint8_t *b = k->buf;
	uint32_t version, stored;
	uint64_t size;

	if (memcmp(b, MAGIC, k->size < 8 ? k->size : 8))
		return fv_err_set(FV_E_FORMAT, "%s: not a fovea checkpoint (bad magic)", k->path);
	if (k->size < PREAMBLE + 4)
		return fv_err_set(FV_E_CORRUPT, "%s: truncated (%zu bytes)", k->path, k->size);
	memcpy(&version, b + 8, 4);
	memcpy(&size, b + 16, 8);
	if (size != k->size)
		return fv_err_set(FV_E_CORRUPT, "%s: %s (%zu bytes, header says %llu)", k->path,
				  size > k->size ? "truncated" : "corrupt or has trailing bytes",
				  k->size, (unsigned long long)size);
	memcpy(&stored, b + k->size - 4, 4);
	uint32_t crc = (uint32_t)crc32_z(crc32_z(0, NULL, 0), b, k->size - 4);
	if (crc != stored)
		return fv_err_set(FV_E_CORRUPT, "%s: checksum mismatch (stored %08x, computed %08x): "
				  "the file is corrupt", k->path, stored, crc);
	if (version > FV_CKPT_VERSION)
		return fv_err_set(FV_E_UNSUPPORTED, "%s: format version %u is newer than this "
				  "fovea reads (%d); upgrade fovea", k->path, version, FV_CKPT_VERSION);
	if (version < 1)
		return fv_err_set(FV_E_CORRUPT, "%s: bad format version %u", k->path, version);
	return 0;
}

static int read_all(fv_ckpt *k)
{
	struct stat st;
	int rc = 0, fd = open(k->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rc = errno;
		goto out;
	}
	k->size = (size_t)st.st_size;
	/* Map rather than read: no copy and no fresh anonymous pages to fault
	 * in. Safe because checkpoints are replaced by rename and deleted by
	 * unlink, never truncated in place, so the mapped inode stays whole. */
	void *m = k->size ? mmap(NULL, k->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)
			  : MAP_FAILED;
	if (m != MAP_FAILED) {
		k->buf = m;
		k->mapped = 1;
		goto out;
	}
	if (posix_memalign((void **)&k->buf, ALIGN, k->size ? k->size : 1)) {
		k->buf = NULL;
		rc = ENOMEM;
		goto out;
	}
	for (size_t got = 0; got < k->size;) {
		ssize_t r = read(fd, k->buf + got, k->size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? errno : EIO; /* shrank under us */
			goto out;
		}
		got += (size_t)r;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		fv_err_set(rc, "%s: cannot read checkpoint: %s", k->path, strerror(rc));
	return rc;
}

int fv_ckpt_open(fv_ckpt **out, const char *path)
{
	fv_ckpt *k = calloc(1, sizeof *k);
	int rc;

	*out = NULL;
	if (!k || !(k->path = strdup(path))) {
		free(k);
		return ENOMEM;
	}
	if ((rc = read_all(k)) || (rc = verify(k)))
		goto out;
	cursor c = { .b = k->buf, .off = PREAMBLE, .end = k->size - 4 };
	if ((rc = parse_header(k, &c)) || (rc = parse_tensors(k, &c)) || (rc = parse_blobs(k, &c)))
		goto out;
out:
	if (rc)
		fv_ckpt_close(&k);
	*out = k;
	return rc;
}

void fv_ckpt_close(fv_ckpt **p)
{
	fv_ckpt *k = *p;
	if (!k)
		return;
	free(k->path);
	if (k->mapped)
		munmap(k->buf, k->size);
	else
		free(k->buf);
	free(k->class_names);
	free(k->meta_copy);
	free(k->meta_kv);
	free(k->tensors);
	free(k->blobs);
	free(k);
	*p = NULL;
}

/* ==== accessors and loading ================================================ */

const fv_ckpt_info *fv_ckpt_info_get(const fv_ckpt *c) { return &c->info; }
size_t fv_ckpt_tensor_count(const fv_ckpt *c) { return c->ntensors; }

const char *fv_ckpt_meta(const fv_ckpt *c, const char *key)
{
	for (size_t i = c->nmeta; i-- > 0;) /* the last assignment wins */
		if (!strcmp(c->meta_kv[2 * i], key))
			return c->meta_kv[2 * i + 1];
	return NULL;
}

int fv_ckpt_tensor_at(const fv_ckpt *c, size_t i, fv_ckpt_tensor *t)
{
	if (i >= c->ntensors)
		return FV_E_NOTFOUND;
	*t = c->tensors[i];
	return 0;
}

int fv_ckpt_tensor_find(const fv_ckpt *c, const char *name, fv_ckpt_tensor *t)
{
	fv_ckpt_tensor key = { .name = name };
	const fv_ckpt_tensor *f = bsearch(&key, c->tensors, c->ntensors, sizeof key, cmp_tensor);
	if (!f)
		return FV_E_NOTFOUND;
	*t = *f;
	return 0;
}

int fv_ckpt_blob_get(const fv_ckpt *c, const char *name, const void **data, size_t *len)
{
	for (size_t i = 0; i < c->nblobs; i++)
		if (!strcmp(c->blobs[i].name, name)) {
			*data = c->blobs[i].data;
			*len = c->blobs[i].len;
			return 0;
		}
	return fv_err_set(FV_E_NOTFOUND, "%s: no blob \"%s\"", c->path, name);
}

static void dims_text(char *buf, size_t cap, int ndim, const int *dims)
{
	int off = 0;
	for (int d = 0; d < ndim && (size_t)off < cap; d++)
		off += snprintf(buf + off, cap - off, "%s%d", d ? "x" : "", dims[d]);
}

/* Classify param p against the file: FV_CKPT_LOADED means "loadable". */
static int judge(const fv_ckpt *c, const fv_param *p, const fv_ckpt_load_opts *o,
		 const fv_ckpt_tensor **out, char *msg, size_t cap)
{
	char name[MAX_NAME + 256];
	fv_ckpt_tensor t;
	int ndim, dims[4];

	if (o->skip && fv_params_match(o->skip, p->name))
		return FV_CKPT_SKIPPED;
	snprintf(name, sizeof name, "%s%s", o->prefix ? o->prefix : "", p->name);
	const fv_ckpt_tensor *f = bsearch(&(fv_ckpt_tensor){ .name = name }, c->tensors,
					  c->ntensors, sizeof t, cmp_tensor);
	if (!f) {
		snprintf(msg, cap, "%s: no tensor \"%s\"", c->path, name);
		return FV_CKPT_MISSING;
	}
	param_dims(p, &ndim, dims);
	if (f->ndim != ndim || memcmp(f->dims, dims, ndim * sizeof(int)) || f->numel != p->numel) {
		char a[96] = "", b[96] = "";
		dims_text(a, sizeof a, f->ndim, f->dims);
		dims_text(b, sizeof b, ndim, dims);
		snprintf(msg, cap, "%s: tensor \"%s\" is %s in the file, %s in the model",
			 c->path, name, a, b);
		return FV_CKPT_SHAPE;
	}
	*out = f;
	return FV_CKPT_LOADED;
}

int fv_ckpt_load_params(const fv_ckpt *c, fv_param *params, size_t n,
			const fv_ckpt_load_opts *o, size_t *loaded)
{
	static const fv_ckpt_load_opts strict;
	char msg[MAX_NAME + 512];
	size_t count = 0, skipped = 0;

	if (!o)
		o = &strict;
	if (loaded)
		*loaded = 0;
	for (size_t i = 0; i < n; i++) {
		const fv_ckpt_tensor *t = NULL;
		if (!params[i].data && params[i].numel)
			return fv_err_set(EINVAL, "%s: param \"%s\" has no data (net not compiled?)",
					  c->path, params[i].name);
		int st = judge(c, &params[i], o, &t, msg, sizeof msg);
		if (o->status)
			o->status[i] = (unsigned char)st;
		if (st == FV_CKPT_SKIPPED)
			skipped++;
		else if (st != FV_CKPT_LOADED && !o->partial)
			return fv_err_set(st == FV_CKPT_MISSING ? FV_E_NOTFOUND : FV_E_MISMATCH,
					  "%s (strict load; nothing loaded)", msg);
		else if (st != FV_CKPT_LOADED)
			fv_warn("partial load: %s; left as it was", msg);
	}
	for (size_t i = 0; i < n; i++) {
		const fv_ckpt_tensor *t = NULL;
		if (judge(c, &params[i], o, &t, msg, sizeof msg) != FV_CKPT_LOADED)
			continue;
		if (t->numel)
			memcpy(params[i].data, t->data, t->numel * sizeof(float));
		count++;
	}
	if (loaded)
		*loaded = count;
	if (o->partial && !count && n > skipped)
		return fv_err_set(FV_E_MISMATCH, "%s: no parameter matched by name and shape%s%s",
				  c->path, o->prefix ? " with prefix " : "", o->prefix ? o->prefix : "");
	return 0;
}
