/* sources.c — where inputs come from: an ImageFolder tree (SOURCE/<class>/
 * <file>), a Caffe-style list file ("<path> <label>", paths relative to the
 * list), or an IDX images file with its labels beside it. Files go through
 * the decode pool (pool.c). */
#include "ingest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_idx.h"
#include "fv_image.h"
#include "fv_log.h"

ing_item *ing_item_new_file(const char *path, const char *cls)
{
	ing_item *it = calloc(1, sizeof *it);
	if (!it)
		return NULL;
	it->path = strdup(path);
	it->cls = strdup(cls);
	if (!it->path || !it->cls) {
		ing_item_free(it);
		return NULL;
	}
	return it;
}

/* A directory entry: its name and dirent type (DT_UNKNOWN where the file
 * system does not say). */
typedef struct dent {
	char *name;
	unsigned char type;
} dent;

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const dent *)a)->name, ((const dent *)b)->name);
}

static void dents_free(dent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Sorted entries of dir (no dot files); *out owned by the caller. */
static int list_dir(const char *dir, dent **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	dent *v = NULL;
	size_t cnt = 0, cap = 0;
	if (!d)
		return fv_err_set(errno, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			dent *g = realloc(v, cap * sizeof *g);
			if (!g)
				break;
			v = g;
		}
		if (!(v[cnt].name = strdup(e->d_name)))
			break;
		v[cnt++].type = e->d_type;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_dent);
	*out = v;
	*n = cnt;
	return 0;
}

/* Is dir/e a folder? The entry's type says so for plain files and folders
 * (no stat: one system call less per image); links and file systems that
 * give no type are asked. */
static int is_dir(const char *path, const dent *e)
{
	struct stat st;
	if (e->type == DT_REG || e->type == DT_DIR)
		return e->type == DT_DIR;
	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* Every file under dir (sorted, subfolders included, dot files skipped) as
 * an item of class cls, into the pool (which decodes them meanwhile). */
static int collect(const char *dir, const char *cls, ing_pool *p, size_t *count, int depth)
{
	dent *ents = NULL;
	char path[PATH_MAX];
	size_t n = 0;
	int rc = depth > 16 ? fv_err_set(FV_E_TOOBIG, "%s: folders nested too deep", dir)
			    : list_dir(dir, &ents, &n);
	for (size_t i = 0; i < n && !rc; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, ents[i].name);
		if (is_dir(path, &ents[i])) {
			rc = collect(path, cls, p, count, depth + 1);
			continue;
		}
		ing_item *it = ing_item_new_file(path, cls);
		rc = it ? ing_pool_add(p, it) : ENOMEM;
		*count += !rc;
	}
	dents_free(ents, n);
	return rc;
}

int ing_source_folder(const ingest_cfg *cfg, ing_writer *w, const char *dir)
{
	dent *ents = NULL;
	char **cls = NULL, path[PATH_MAX];
	size_t n = 0, ncls = 0, count = 0;
	ing_pool *p = NULL;
	int rc = list_dir(dir, &ents, &n);
	if (rc)
		return rc;
	if (n && !(cls = calloc(n, sizeof *cls)))
		rc = ENOMEM;
	for (size_t c = 0; c < n && !rc; c++) {
		snprintf(path, sizeof path, "%s/%s", dir, ents[c].name);
		if (is_dir(path, &ents[c]))
			cls[ncls++] = ents[c].name; /* only folders, in sorted order */
		else
			fv_warn("%s: not a class folder, skipped", path);
	}
	/* sorted class names get the first indices, as torchvision's ImageFolder
	 * (registered before any image, so empty classes are no exception) */
	if (!rc)
		rc = ing_writer_classes(w, cls, NULL, ncls);
	if (!rc)
		rc = ing_pool_open(cfg, w, NULL, &p);
	for (size_t c = 0; c < ncls && !rc; c++) {
		snprintf(path, sizeof path, "%s/%s", dir, cls[c]);
		rc = collect(path, cls[c], p, &count, 0);
	}
	if (p) /* a listing error stops the decoding too */
		rc = ing_pool_close(&p, rc);
	if (!rc && !count)
		fv_warn("%s: no images found (expected %s/<class>/<image>)", dir, dir);
	free(cls); /* the names are ents' */
	dents_free(ents, n);
	return rc;
}

/* ---------------------------------------------------------------- list file */

/* Two passes over the list: the first checks every line and finds the
 * labels (integer labels are class indices, registered before any image),
 * the second feeds the pool as it goes, so a list of millions of lines
 * holds a bounded number of items at a time. */
typedef struct list_ctx {
	ing_pool *p; /* the second pass's; NULL in the first */
	char base[PATH_MAX];
	int numeric;
	long max_label;
} list_ctx;

static int list_entry(void *ctx, const char *path, const char *label, size_t line)
{
	list_ctx *l = ctx;
	char full[PATH_MAX * 2];
	(void)line;
	if (!l->p) {
		char *end;
		long v = strtol(label, &end, 10);
		if (*end || v < 0 || v > 1000000 || end == label)
			l->numeric = 0;
		else if (v > l->max_label)
			l->max_label = v;
		return 0;
	}
	if (path[0] == '/')
		snprintf(full, sizeof full, "%s", path);
	else
		snprintf(full, sizeof full, "%s/%s", l->base, path);
	ing_item *it = ing_item_new_file(full, label);
	return it ? ing_pool_add(l->p, it) : ENOMEM;
}

int ing_source_list(const ingest_cfg *cfg, ing_writer *w, const char *list)
{
	list_ctx l = { .numeric = 1, .max_label = -1 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char **names = NULL;
	size_t nnames = 0;
	struct stat st;
	/* "-" is standard input; a list from a pipe (or standard input) names
	 * paths relative to the working directory, a list file relative to
	 * its own folder */
	int in = !strcmp(list, "-"), stream = in || stat(list, &st) || !S_ISREG(st.st_mode);
	FILE *f = in ? stdin : fopen(list, "rb");
	int rc = 0;
	if (in)
		list = "standard input";
	if (!f)
		return fv_err_set(errno, "%s: %s", list, strerror(errno));
	for (size_t cap = 0;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *g = realloc(buf, cap);
			if (!g) {
				rc = ENOMEM;
				break;
			}
			buf = g;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (!r)
			break;
	}
	if (!rc && ferror(f))
		rc = fv_err_set(EIO, "%s: cannot read", list);
	if (!in)
		fclose(f);
	const char *slash = stream ? NULL : strrchr(list, '/');
	snprintf(l.base, sizeof l.base, "%.*s", slash ? (int)(slash - list) : 1, slash ? list : ".");
	if (!rc)
		rc = ing_list_parse((const char *)buf, len, list, list_entry, &l);
	if (!rc && cfg->labels)
		rc = ing_labels_read(cfg->labels, &names, &nnames);
	/* integer labels are class indices, as in Caffe: register 0..max in order */
	if (!rc && l.numeric && l.max_label >= 0) {
		size_t k = (size_t)l.max_label + 1 > nnames ? (size_t)l.max_label + 1 : nnames;
		for (size_t i = 0; i < k && !rc; i++) {
			char id[24], *ids[1] = { id }, *nm[1] = { i < nnames ? names[i] : NULL };
			snprintf(id, sizeof id, "%zu", i);
			rc = ing_writer_classes(w, ids, nm, 1);
		}
	}
	ing_labels_free(&names, nnames);
	if (!rc && !(rc = ing_pool_open(cfg, w, NULL, &l.p))) {
		rc = ing_list_parse((const char *)buf, len, list, list_entry, &l);
		rc = ing_pool_close(&l.p, rc);
	}
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- IDX */

int ing_source_idx(const ingest_cfg *cfg, ing_writer *w, const char *images)
{
	char lpath[PATH_MAX], **names = NULL;
	size_t nnames = 0;
	fv_idx im = { 0 }, lb = { 0 };
	const char *base = strrchr(images, '/');
	int rc;
	base = base ? base + 1 : images;
	if ((rc = fv_idx_labels_path(images, lpath, sizeof lpath)))
		return rc;
	if ((rc = fv_idx_open(images, 0, &im)) || (rc = fv_idx_open(lpath, 0, &lb)))
		goto out;
	if (im.ndims != 3 || lb.ndims != 1 || lb.count != im.count) {
		rc = fv_err_set(FV_E_MISMATCH, "%s: %zu images (%d dims) but %s has %zu labels",
				images, im.count, im.ndims, lpath, lb.count);
		goto out;
	}
	if (cfg->labels && (rc = ing_labels_read(cfg->labels, &names, &nnames)))
		goto out;
	unsigned maxl = 0;
	for (size_t i = 0; i < lb.count; i++)
		maxl = lb.data[i] > maxl ? lb.data[i] : maxl;
	/* label k is class "k", so indices equal the file's labels */
	for (size_t i = 0; i < (size_t)maxl + 1 || i < nnames; i++) {
		char id[8], *ids[1] = { id }, *nm[1] = { i < nnames ? names[i] : NULL };
		snprintf(id, sizeof id, "%zu", i);
		if ((rc = ing_writer_classes(w, ids, nm, 1)))
			goto out;
	}
	uint32_t h = im.dims[1], wd = im.dims[2];
	for (size_t i = 0; i < im.count && !rc; i++) {
		if (fv_stopping()) {
			rc = fv_err_set(ECANCELED, "stopped by a signal");
			break;
		}
		ing_item *it = calloc(1, sizeof *it);
		char src[PATH_MAX + 32], id[8];
		if (!it) {
			rc = ENOMEM;
			break;
		}
		snprintf(src, sizeof src, "%s#%zu", base, i);
		snprintf(id, sizeof id, "%u", lb.data[i]);
		it->source = strdup(src);
		it->cls = strdup(id);
		it->cls_name = lb.data[i] < nnames ? names[lb.data[i]] : NULL;
		it->data = (uint8_t *)im.data + i * im.item_size; /* borrowed until the flush */
		it->len = im.item_size;
		it->width = wd;
		it->height = h;
		it->channels = 1;
		it->encoding = 0; /* raw: 784 bytes beat any JPEG of a 28x28 digit */
		fv_image_hash((int)wd, (int)h, 1, it->data, it->hash);
		it->split = ing_item_split(cfg, it->hash);
		if (!it->source || !it->cls) {
			ing_item_free(it);
			rc = ENOMEM;
			break;
		}
		rc = ing_writer_add(w, it);
	}
	/* items borrow im's buffer: commit them before it goes, also after a
	 * failure (a failed flush frees them) */
	int frc = ing_writer_flush(w);
	if (!rc)
		rc = frc;
out:
	ing_labels_free(&names, nnames);
	fv_idx_free(&im);
	fv_idx_free(&lb);
	return rc;
}

/* ---------------------------------------------------------------- dispatch */

#define SOURCE_KINDS "a folder of class folders (SOURCE/<class>/<image>), a list file or an IDX images file"

/* What a file source that is neither a list nor IDX images looks like
 * from its first bytes, as an error; 0 when it may be a list. */
static int not_a_list(const char *src)
{
	uint8_t h[8] = { 0 };
	int fd = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n = fd < 0 ? -1 : read(fd, h, sizeof h);
	if (fd >= 0)
		close(fd);
	if (n < 4)
		return 0; /* the list reader says what is wrong */
	const char *base = strrchr(src, '/');
	base = base ? base + 1 : src;
	if (fv_image_sniff(h, (size_t)n) != FV_IMG_UNKNOWN)
		return fv_err_set(FV_E_FORMAT, "%s: an image, not a source; give " SOURCE_KINDS, src);
	if (strstr(base, "labels-idx1"))
		return fv_err_set(FV_E_FORMAT, "%s: IDX labels; give the images file beside it "
				  "(train-images-idx3-ubyte.gz for train-labels-idx1-ubyte.gz)", src);
	if ((h[0] == 0x1f && h[1] == 0x8b) || (!h[0] && !h[1] && h[2] == 0x08))
		return fv_err_set(FV_E_FORMAT, "%s: %s, but an IDX images file's name holds "
				  "\"images-idx3\" (its labels are found by that name); give " SOURCE_KINDS,
				  src, h[0] ? "gzip data" : "IDX data");
	return 0;
}

int ing_source_add(const ingest_cfg *cfg, ing_writer *w, const char *src)
{
	struct stat st;
	int rc;
	if (!strcmp(src, "-"))
		return ing_source_list(cfg, w, src);
	if (stat(src, &st))
		return fv_err_set(errno, "%s: %s", src, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return ing_source_folder(cfg, w, src);
	if (!S_ISREG(st.st_mode)) /* a pipe (/dev/stdin): a list, read as it comes */
		return ing_source_list(cfg, w, src);
	const char *base = strrchr(src, '/');
	base = base ? base + 1 : src;
	if (strstr(base, "-idx3-"))
		return ing_source_idx(cfg, w, src);
	if ((rc = not_a_list(src)))
		return rc;
	return ing_source_list(cfg, w, src);
}
