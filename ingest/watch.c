/* watch.c — `fovea ingest --watch INBOX`: the inbox daemon. Images dropped
 * into INBOX/<class>/ (or a folder in it, at any depth up to 16, as a batch
 * run takes them) are ingested once fully written (IN_CLOSE_WRITE or
 * IN_MOVED_TO), committed in batches (by size, or every batch-ms), and only
 * then moved to the same place under INBOX/.done/ — or INBOX/.rejected/,
 * beside a NAME.reason file (so .done stays an ImageFolder of what was
 * stored). A crash before the commit leaves the file in the inbox, so it is
 * ingested on the next start; a crash after it finds a duplicate. Each
 * commit publishes DatasetUpdated on the PUB socket (a hint: subscribers
 * catch up from the dataset's meta). A commit that fails for want of room
 * (disk full, quota, memory) does not stop the daemon: its files are still
 * in the inbox, and it scans the inbox again after a wait that doubles, 1 s
 * up to a minute, while commits keep failing. It also scans the inbox every
 * rescan-s seconds: a file written on another machine into a network file
 * system (NFS, SMB) sends no inotify event, nor does a hard link made into
 * the inbox (IN_CREATE only, and a created file may be half written).
 * The inbox folder moved away or removed, it makes a new one at its path
 * and watches that (inbox_again). A file that cannot leave the inbox is
 * passed by until it or its folder changes (stuck).
 * Files decode on --jobs threads of a decode pool (pool.c), so this thread
 * stays free between files of a burst or a scan of thousands: it answers
 * the status endpoint, feeds the systemd watchdog and stops on SIGTERM
 * within about one file's decode, leaving the rest in the inbox. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_image.h"
#include "fv_log.h"
#include "fv_msg.h"
#include "fv_status.h"
#include "ingest.h"

#define TICK_MS 100
#define MAX_DEPTH 16 /* folders in a class folder, as a batch run takes them */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* what the inbox's own watch says when the folder is no longer at its path */
#define INBOX_GONE (IN_MOVE_SELF | IN_DELETE_SELF | IN_UNMOUNT | IN_IGNORED)

/* A watched folder: a class folder or a folder in one (at depth 1..). */
typedef struct wdir {
	int wd, depth;
	char *cls, *rel; /* its class; its path under the inbox */
} wdir;

/* A file stored (or rejected) that could not leave the inbox: a folder
 * the daemon may not write, a read-only mount, an immutable file. Left
 * there, every scan would decode it and count it again, with a warning
 * each time; so a scan passes it by while it and its folder are as they
 * were (the folder's ctime moves when its permissions are fixed, or a file
 * comes or goes in it). An event that names it, or its absence from a
 * whole scan, forgets it. */
typedef struct stuck {
	char *path;
	fv_source_stat st, dir; /* the file's (a link's own), its folder's */
	uint64_t gen;           /* the scan that last met it */
} stuck;

typedef struct watch {
	const ingest_cfg *cfg;
	fv_store *s;
	ing_writer *w;
	int ifd, inbox_wd;
	int idle_fd; /* an eventfd the pool pokes when it has handed everything on */
	wdir *dirs; /* by watch descriptor, ascending */
	size_t ndirs, capdirs;
	void *zctx, *pub;
	uint64_t seq, published;
	int64_t last_flush;
	ing_pool *pool; /* decodes for the writer; one per writer */
	int recheck_soon; /* a pool thread dropped a file still being written */
	int inbox_lost;   /* the inbox folder was moved away or removed */
	int64_t last_tick;
	int64_t rescan_at; /* 0, or when to scan the inbox again */
	int64_t last_scan; /* when it last scanned the whole inbox */
	fv_status *status;
	/* commits failing for want of room: when to try again (0: they work),
	 * the wait after the next failure, and why */
	int64_t retry_at, retry_ms;
	char failing[512];
	uint64_t prev_added, prev_dups, prev_rejected; /* totals of writers given up */
	/* by path; added on the commit thread, looked up by scans */
	pthread_mutex_t stuck_mu;
	stuck *stuck;
	size_t nstuck, capstuck;
	uint64_t scan_gen;
} watch;

static int hidden(const char *name)
{
	return name[0] == '.';
}

/* Make the folders above path that are missing, from INBOX/<dir>/ down. */
static void mkdir_parents(const watch *x, char *path)
{
	size_t from = strlen(x->cfg->watch) + 1;
	for (char *p = strchr(path + from, '/'); p; p = strchr(p + 1, '/')) {
		if (p == path + from || p[-1] == '/')
			continue;
		*p = 0;
		if (mkdir(path, 0775) && errno != EEXIST)
			fv_debug("%s: %s", path, strerror(errno));
		*p = '/';
	}
}

/* dest for try i of INBOX/<dir>/rel: rel itself, then with .vVERSION
 * (then .vVERSION-i) before its extension. */
static void dest_name(const watch *x, const char *dir, const char *rel, uint64_t version, int i,
		      char *dest, size_t cap)
{
	const char *base = strrchr(rel, '/'), *dot = strrchr(base ? base + 1 : rel, '.');
	int stem = (int)(dot && dot != (base ? base + 1 : rel) ? dot - rel : (ptrdiff_t)strlen(rel));
	char v[48] = "";
	if (i == 1)
		snprintf(v, sizeof v, ".v%llu", (unsigned long long)version);
	else if (i > 1)
		snprintf(v, sizeof v, ".v%llu-%d", (unsigned long long)version, i);
	snprintf(dest, cap, "%s/%s/%.*s%s%s", x->cfg->watch, dir, stem, rel, v, rel + stem);
}

/* Move path (in the inbox) to the same place under INBOX/<dir>/ (.done or
 * .rejected), so that .done stays an ImageFolder of what was stored; a name
 * taken by an earlier file of the same path gets the dataset version. A
 * file there is never replaced. 0, or errno (ENOENT: path is gone). */
static int move_to(const watch *x, const char *path, const char *dir, uint64_t version, char *dest,
		   size_t cap)
{
	size_t n = strlen(x->cfg->watch);
	const char *rel = path + n + 1;
	if (strncmp(path, x->cfg->watch, n) || path[n] != '/')
		return EINVAL; /* not from the inbox: cannot be */
	for (int i = 0, made = 0; i < 1000; i++) {
		dest_name(x, dir, rel, version, i, dest, cap);
		if (!renameat2(AT_FDCWD, path, AT_FDCWD, dest, RENAME_NOREPLACE))
			return 0;
		if (errno == EINVAL) { /* a file system without RENAME_NOREPLACE */
			if (!access(dest, F_OK))
				continue;
			return rename(path, dest) ? errno : 0;
		}
		if (errno == ENOENT && !made && !faccessat(AT_FDCWD, path, F_OK, AT_SYMLINK_NOFOLLOW)) {
			mkdir_parents(x, dest); /* the folders under .done are missing */
			made = 1;
			i--;
			continue;
		}
		if (errno != EEXIST)
			return errno;
	}
	return EEXIST;
}

/* path's stat (not a link's target) and its folder's into e. */
static int stuck_stat(const char *path, stuck *e)
{
	struct stat st, dst;
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (!n || n >= sizeof dir || lstat(path, &st))
		return -1;
	memcpy(dir, path, n);
	dir[n] = 0;
	if (stat(dir, &dst))
		return -1;
	ing_source_stat(&st, &e->st);
	ing_source_stat(&dst, &e->dir);
	return 0;
}

/* With stuck_mu held: path's index, or where it would go (*found 0). */
static size_t stuck_find(const watch *x, const char *path, int *found)
{
	size_t lo = 0, hi = x->nstuck;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(x->stuck[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < x->nstuck && !strcmp(x->stuck[lo].path, path);
	return lo;
}

static void stuck_remove(watch *x, size_t i)
{
	free(x->stuck[i].path);
	memmove(x->stuck + i, x->stuck + i + 1, (x->nstuck - i - 1) * sizeof *x->stuck);
	__atomic_store_n(&x->nstuck, x->nstuck - 1, __ATOMIC_RELAXED);
}

/* On the commit thread: path stays in the inbox. */
static void stuck_add(watch *x, const char *path)
{
	stuck e = { 0 };
	int found;
	if (stuck_stat(path, &e))
		return; /* gone meanwhile: nothing to pass by */
	pthread_mutex_lock(&x->stuck_mu);
	size_t i = stuck_find(x, path, &found);
	if (found) {
		e.path = x->stuck[i].path;
	} else {
		if (x->nstuck == x->capstuck) {
			size_t cap = x->capstuck ? x->capstuck * 2 : 64;
			stuck *g = realloc(x->stuck, cap * sizeof *g);
			if (g) {
				x->stuck = g;
				x->capstuck = cap;
			}
		}
		if (x->nstuck == x->capstuck || !(e.path = strdup(path))) {
			pthread_mutex_unlock(&x->stuck_mu);
			return; /* out of memory: the next scan takes it again */
		}
		memmove(x->stuck + i + 1, x->stuck + i, (x->nstuck - i) * sizeof *x->stuck);
		__atomic_store_n(&x->nstuck, x->nstuck + 1, __ATOMIC_RELAXED);
	}
	e.gen = x->scan_gen;
	x->stuck[i] = e;
	pthread_mutex_unlock(&x->stuck_mu);
}

/* Should the file at path be passed by? scanned: a scan found it (else an
 * event named it: it changed, and is forgotten). */
static int stuck_skip(watch *x, const char *path, int scanned)
{
	stuck now;
	int found, skip = 0;
	if (!__atomic_load_n(&x->nstuck, __ATOMIC_RELAXED))
		return 0; /* (the usual case: no stat) */
	pthread_mutex_lock(&x->stuck_mu);
	size_t i = stuck_find(x, path, &found);
	if (found) {
		stuck *e = &x->stuck[i];
		skip = scanned && !stuck_stat(path, &now) && ing_source_stat_eq(&now.st, &e->st) &&
		       ing_source_stat_eq(&now.dir, &e->dir);
		if (skip)
			e->gen = x->scan_gen;
		else
			stuck_remove(x, i);
	}
	pthread_mutex_unlock(&x->stuck_mu);
	return skip;
}

/* After a whole scan (gen): forget what it did not meet. */
static void stuck_prune(watch *x, uint64_t gen)
{
	pthread_mutex_lock(&x->stuck_mu);
	for (size_t i = x->nstuck; i-- > 0;)
		if (x->stuck[i].gen < gen)
			stuck_remove(x, i);
	pthread_mutex_unlock(&x->stuck_mu);
}

static void on_done(void *ctx, ing_item *it, int stored, uint64_t version)
{
	watch *x = ctx;
	char dest[PATH_MAX + 64];
	int rc;
	if (stored && x->cfg->delete_stored) /* the commit is durable: the dataset has its bytes */
		rc = unlink(it->path) ? errno : 0;
	else
		rc = move_to(x, it->path, stored ? ".done" : ".rejected", version, dest, sizeof dest);
	if (rc) {
		if (rc != ENOENT) {
			fv_warn("%s: cannot %s: %s; left there, not taken again until it or its "
				"folder changes", it->path, stored && x->cfg->delete_stored ? "delete"
				: "move out of the inbox", strerror(rc));
			stuck_add(x, it->path);
		}
		return;
	}
	if (!stored) {
		char rpath[PATH_MAX + 80];
		snprintf(rpath, sizeof rpath, "%s.reason", dest);
		FILE *f = fopen(rpath, "w");
		if (f) {
			fprintf(f, "%s\n", it->reason);
			fclose(f);
		}
	}
}

static void publish(watch *x)
{
	fv_store_meta m;
	if (!x->pub || fv_store_meta_get(x->s, &m) || m.version == x->published)
		return;
	uint64_t added, dups, rej, v;
	ing_writer_totals(x->w, &added, &dups, &rej, &v);
	Fovea__DatasetUpdated du = FOVEA__DATASET_UPDATED__INIT;
	du.db = (char *)fv_store_dir(x->s);
	du.version = m.version;
	du.records = m.records;
	du.added = added;
	du.train = m.split[0];
	du.val = m.split[1];
	du.classes = m.classes;
	int rc = fv_msg_send(x->pub, NULL, 0, FOVEA__MSG_TYPE__MSG_DATASET_UPDATED, 1, ++x->seq,
			     &du.base, ZMQ_DONTWAIT);
	if (rc && rc != EAGAIN)
		fv_warn("publish DatasetUpdated: %s", fv_err_msg(rc));
	x->published = m.version;
}

/* This run's totals, over every writer it had. */
static void totals(const watch *x, uint64_t *a, uint64_t *d, uint64_t *r, uint64_t *v)
{
	ing_writer_totals(x->w, a, d, r, v);
	*a += x->prev_added;
	*d += x->prev_dups;
	*r += x->prev_rejected;
}

static int flush(watch *x)
{
	size_t had = ing_writer_pending(x->w);
	int rc = ing_writer_flush(x->w);
	x->last_flush = fv_now_ms();
	if (rc)
		return rc;
	if (had && x->failing[0]) { /* a commit went through: the wait starts over */
		fv_info("commits work again");
		x->failing[0] = 0;
		x->retry_ms = 0;
	}
	publish(x);
	uint64_t a, d, r, v;
	totals(x, &a, &d, &r, &v);
	fv_sd_status("version %llu: added %llu, duplicates %llu, rejected %llu",
		     (unsigned long long)v, (unsigned long long)a, (unsigned long long)d,
		     (unsigned long long)r);
	return 0;
}

/* Between the files of a burst or a scan, and once per poll: answer the
 * status endpoint and feed the watchdog (both at most every TICK_MS);
 * ECANCELED once SIGTERM or SIGINT came. */
static int tick(watch *x)
{
	int64_t now = fv_now_ms();
	if (now - x->last_tick >= TICK_MS) {
		x->last_tick = now;
		fv_status_update(x->status, 0);
		fv_sd_watchdog_tick();
	}
	return fv_stop_requested ? fv_err_set(ECANCELED, "stopped by a signal") : 0;
}

/* INBOX/rel/name, or INBOX/name when rel is NULL. */
static void inbox_path(const watch *x, const char *rel, const char *name, char *out, size_t cap)
{
	if (rel)
		snprintf(out, cap, "%s/%s/%s", x->cfg->watch, rel, name);
	else
		snprintf(out, cap, "%s/%s", x->cfg->watch, name);
}

/* The pool's filter, on a pool thread, after the decode: a file gone (seen
 * twice, by a scan and an event, and moved already) is dropped; so is a bad
 * file found by a scan that was modified in the last seconds: it may still
 * be being written, and its writer's close sends an event. */
static int keep(void *ctx, ing_item *it)
{
	watch *x = ctx;
	struct stat st;
	if (!it->reason)
		return 1;
	if (it->read_error == ENOENT && lstat(it->path, &st))
		return 0; /* (still there: a link to nothing, rejected) */
	if (it->scanned && it->cls[0] && !stat(it->path, &st) && time(NULL) - st.st_mtime < 3) {
		fv_debug("%s: still being written? waiting for its close", it->path);
		__atomic_store_n(&x->recheck_soon, 1, __ATOMIC_RELAXED); /* look again, in case none comes */
		return 0;
	}
	return 1;
}

/* Into the pool: INBOX/rel/name, of class cls (NULL: a file at the top
 * of the inbox, rejected); scanned: found by a directory scan rather than a
 * close or move event. */
static int ingest_file(watch *x, const char *cls, const char *rel, const char *name, int scanned)
{
	char path[PATH_MAX];
	if (hidden(name))
		return 0;
	inbox_path(x, cls ? rel : NULL, name, path, sizeof path);
	if (stuck_skip(x, path, scanned))
		return 0;
	ing_item *it = ing_item_new_file(path, cls ? cls : "");
	if (!it)
		return ENOMEM;
	it->scanned = scanned;
	if (!cls)
		ing_item_reject(it, "%s: not in a class folder (INBOX/<class>/<image>)", path);
	return ing_pool_add(x->pool, it);
}

/* The watched folder of wd: its index, or where it would go (*found 0).
 * Descriptors grow as the kernel hands them out, so the array is appended
 * to in order, bar a wrap-around. */
static size_t dir_find(const watch *x, int wd, int *found)
{
	size_t lo = 0, hi = x->ndirs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (x->dirs[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < x->ndirs && x->dirs[lo].wd == wd;
	return lo;
}

/* INBOX/rel was moved away (out of the inbox, or to another name in it,
 * which its IN_MOVED_TO adds again): stop watching it and the folders in
 * it. Left, their watches would pile up for the daemon's life and name
 * their files by paths that lead nowhere. */
static void dirs_forget(watch *x, const char *rel)
{
	size_t n = strlen(rel), j = 0;
	for (size_t i = 0; i < x->ndirs; i++) {
		wdir *d = &x->dirs[i];
		if (!strncmp(d->rel, rel, n) && (!d->rel[n] || d->rel[n] == '/')) {
			inotify_rm_watch(x->ifd, d->wd);
			free(d->cls);
			free(d->rel);
		} else {
			x->dirs[j++] = *d;
		}
	}
	x->ndirs = j;
}

static void dir_drop(watch *x, int wd)
{
	int found;
	size_t i = dir_find(x, wd, &found);
	if (!found)
		return;
	free(x->dirs[i].cls);
	free(x->dirs[i].rel);
	memmove(x->dirs + i, x->dirs + i + 1, (x->ndirs - i - 1) * sizeof *x->dirs);
	x->ndirs--;
}

/* Remember wd as folder rel of class cls (again, under a new name, when it
 * was moved). */
static int dir_set(watch *x, int wd, const char *cls, const char *rel, int depth)
{
	int found;
	size_t i = dir_find(x, wd, &found);
	char *c = strdup(cls), *r = strdup(rel);
	if (!c || !r) {
		free(c);
		free(r);
		return ENOMEM;
	}
	if (found) {
		free(x->dirs[i].cls);
		free(x->dirs[i].rel);
	} else {
		if (x->ndirs == x->capdirs) {
			size_t cap = x->capdirs ? x->capdirs * 2 : 64;
			wdir *g = realloc(x->dirs, cap * sizeof *g);
			if (!g) {
				free(c);
				free(r);
				return ENOMEM;
			}
			x->dirs = g;
			x->capdirs = cap;
		}
		memmove(x->dirs + i + 1, x->dirs + i, (x->ndirs - i) * sizeof *x->dirs);
		x->ndirs++;
	}
	x->dirs[i] = (wdir){ .wd = wd, .depth = depth, .cls = c, .rel = r };
	return 0;
}

/* Watch INBOX/rel (a class folder, or a folder in one at depth > 0), then
 * take what is already there, folders in it included (what landed before
 * the watch existed). */
static int add_dir(watch *x, const char *cls, const char *rel, int depth)
{
	char path[PATH_MAX], sub[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", x->cfg->watch, rel);
	if (depth > MAX_DEPTH) {
		fv_warn("%s: folders nested too deep, not watched", path);
		return 0;
	}
	int wd = inotify_add_watch(x->ifd, path,
				   IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_ONLYDIR);
	if (wd < 0 && (errno == ENOENT || errno == ENOTDIR))
		return 0; /* gone again, or never a folder */
	if (wd < 0) /* what is there is taken now, what comes later by the periodic scan */
		fv_warn("%s: cannot watch: %s; only scanning it", path,
			errno == ENOSPC ? "too many folders (raise fs.inotify.max_user_watches)"
					: strerror(errno));
	int rc = wd < 0 ? 0 : dir_set(x, wd, cls, rel, depth);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && !rc && !(rc = tick(x)) && (e = readdir(d))) {
		if (hidden(e->d_name))
			continue;
		if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) {
			fv_warn("%s/%s: path too long, skipped", path, e->d_name);
			continue;
		}
		if (e->d_type == DT_DIR ||
		    (e->d_type == DT_UNKNOWN && !stat(sub, &st) && S_ISDIR(st.st_mode))) {
			snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name);
			rc = add_dir(x, cls, sub, depth + 1);
		} else if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
			rc = ingest_file(x, cls, rel, e->d_name, 1); /* a link: its target */
		}
	}
	if (d)
		closedir(d);
	return rc;
}

static int scan_inbox(watch *x)
{
	uint64_t gen;
	x->last_scan = fv_now_ms();
	pthread_mutex_lock(&x->stuck_mu);
	gen = ++x->scan_gen;
	pthread_mutex_unlock(&x->stuck_mu);
	DIR *d = opendir(x->cfg->watch);
	struct dirent *e;
	struct stat st;
	char path[PATH_MAX];
	int rc = 0;
	if (!d)
		return fv_err_set(errno, "%s: %s", x->cfg->watch, strerror(errno));
	while (!rc && !(rc = tick(x)) && (e = readdir(d))) {
		if (hidden(e->d_name))
			continue;
		inbox_path(x, NULL, e->d_name, path, sizeof path);
		if (stat(path, &st))
			continue;
		rc = S_ISDIR(st.st_mode) ? add_dir(x, e->d_name, e->d_name, 0)
					 : ingest_file(x, NULL, NULL, e->d_name, 1);
	}
	closedir(d);
	if (!rc)
		stuck_prune(x, gen);
	return rc;
}

/* Is the file an IN_CREATE event names a symbolic link? A link is whole
 * once made (what it points to is the writer's business), and no close
 * event follows it; a created plain file may still be being written. */
static int is_link(const watch *x, const char *rel, const char *name, uint32_t mask)
{
	char path[PATH_MAX];
	struct stat st;
	if (!(mask & IN_CREATE))
		return 0;
	inbox_path(x, rel, name, path, sizeof path);
	return !lstat(path, &st) && S_ISLNK(st.st_mode);
}

static int on_events(watch *x)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	char rel[PATH_MAX];
	int rc = 0, found;
	size_t i;
	for (;;) {
		ssize_t len = read(x->ifd, buf, sizeof buf);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return 0; /* EAGAIN: drained */
		for (char *p = buf; p < buf + len && !rc;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if ((rc = tick(x)))
				break;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* events were lost: look again, once what is in
				 * flight is committed (or it would be taken twice) */
				fv_info("inotify queue overflowed (fs.inotify.max_queued_events): "
					"scanning the inbox");
				x->rescan_at = fv_now_ms();
			} else if (ev->wd == x->inbox_wd && ev->mask & INBOX_GONE) {
				/* the rest of the queue names the old folder's files
				 * by paths that no longer lead to them */
				x->inbox_lost = 1;
				return 0;
			} else if (ev->mask & IN_IGNORED) { /* its folder went */
				dir_drop(x, ev->wd);
			} else if (!ev->len || hidden(ev->name)) {
				continue;
			} else if (ev->wd == x->inbox_wd) {
				if ((ev->mask & (IN_ISDIR | IN_MOVED_FROM)) == (IN_ISDIR | IN_MOVED_FROM))
					dirs_forget(x, ev->name);
				else if (ev->mask & IN_ISDIR)
					rc = add_dir(x, ev->name, ev->name, 0);
				else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO) ||
					 is_link(x, NULL, ev->name, ev->mask))
					rc = ingest_file(x, NULL, NULL, ev->name, 0);
			} else if ((i = dir_find(x, ev->wd, &found), found)) {
				const wdir *w = &x->dirs[i];
				if (ev->mask & IN_ISDIR) /* a folder of the class */
					snprintf(rel, sizeof rel, "%s/%s", w->rel, ev->name);
				if ((ev->mask & (IN_ISDIR | IN_MOVED_FROM)) == (IN_ISDIR | IN_MOVED_FROM)) {
					dirs_forget(x, rel);
				} else if (ev->mask & IN_ISDIR) { /* made or moved in */
					rc = add_dir(x, w->cls, rel, w->depth + 1);
				} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO) ||
					   is_link(x, w->rel, ev->name, ev->mask)) {
					rc = ingest_file(x, w->cls, w->rel, ev->name, 0);
				}
			}
		}
		if (rc)
			return rc;
	}
}

/* The pool's on_idle, on a pool thread: wake the loop, which flushes. */
static void pool_idle(void *ctx)
{
	const watch *x = ctx;
	uint64_t one = 1;
	if (write(x->idle_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		fv_debug("eventfd: %s", strerror(errno));
}

/* A writer and the pool that feeds it. */
static int writer_open(watch *x)
{
	ing_pool_opts po = { .daemon = 1, .keep = keep, .on_idle = pool_idle, .ctx = x };
	int rc = ing_writer_new(x->s, x->cfg, &x->w);
	if (rc)
		return rc;
	ing_writer_on_done(x->w, on_done, x);
	return ing_pool_open(x->cfg, x->w, &po, &x->pool);
}

/* rc came from the writer (through the pool or a flush): when a commit
 * failed for want of room, give the writer and its pool up (what they held
 * is still in the inbox), wait, then scan the inbox again with new ones; 0
 * then, else rc (the daemon stops). */
static int commit_failed(watch *x, int rc)
{
	int why = ing_writer_failed(x->w);
	if (!why || !(why == ENOSPC || why == EDQUOT || why == ENOMEM))
		return rc;
	x->retry_ms = x->retry_ms ? x->retry_ms * 2 : RETRY_MIN_MS;
	if (x->retry_ms > RETRY_MAX_MS)
		x->retry_ms = RETRY_MAX_MS;
	snprintf(x->failing, sizeof x->failing, "%s", fv_err_msg(why));
	fv_err("%s; the files stay in the inbox, trying again in %lld s", x->failing,
	       (long long)(x->retry_ms / 1000));
	fv_sd_status("commits failing: %s", x->failing);
	uint64_t a, d, r, v;
	ing_writer_totals(x->w, &a, &d, &r, &v);
	x->prev_added += a;
	x->prev_dups += d;
	x->prev_rejected += r;
	ing_pool_close(&x->pool, why); /* stop it: its items stay in the inbox */
	ing_writer_destroy(&x->w);
	if ((rc = writer_open(x)))
		return rc;
	x->retry_at = fv_now_ms() + x->retry_ms;
	return 0;
}

/* While commits wait to be tried again: events are dropped, the scan after
 * the wait finds their files; the inbox's own going is kept. */
static void drain_events(watch *x)
{
	char buf[16 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	while ((len = read(x->ifd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->wd == x->inbox_wd && ev->mask & INBOX_GONE)
				x->inbox_lost = 1;
		}
}

static void dirs_clear(watch *x)
{
	for (size_t i = 0; i < x->ndirs; i++) {
		if (x->ifd >= 0)
			inotify_rm_watch(x->ifd, x->dirs[i].wd);
		free(x->dirs[i].cls);
		free(x->dirs[i].rel);
	}
	x->ndirs = 0;
}

/* Make the inbox and its .done and .rejected (what is missing), and watch
 * it. */
static int watch_inbox(watch *x)
{
	const char *inbox = x->cfg->watch;
	char path[PATH_MAX];
	if (mkdir(inbox, 0775) && errno != EEXIST)
		return fv_err_set(errno, "%s: %s", inbox, strerror(errno));
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", inbox, i ? ".rejected" : ".done");
		if (mkdir(path, 0775) && errno != EEXIST)
			return fv_err_set(errno, "%s: %s", path, strerror(errno));
	}
	x->inbox_wd = inotify_add_watch(x->ifd, inbox, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
						       IN_CLOSE_WRITE | IN_ONLYDIR | IN_MOVE_SELF |
						       IN_DELETE_SELF);
	if (x->inbox_wd < 0)
		return fv_err_set(errno, "%s: cannot watch: %s", inbox, strerror(errno));
	return 0;
}

/* The inbox folder was moved away (an operator rotating it) or removed:
 * every watch follows the old folder, where paths built from INBOX no
 * longer lead, so the daemon would take nothing more while it looked
 * alive. Make INBOX again, as at the start, and scan it once what is in
 * flight is committed. What the pool holds of the old folder is stored
 * and stays where it went. */
static int inbox_again(watch *x)
{
	fv_warn("%s: the inbox folder was moved or removed; watching a new one at that path",
		x->cfg->watch);
	drain_events(x); /* they name the old folder's files */
	x->inbox_lost = 0;
	dirs_clear(x);
	inotify_rm_watch(x->ifd, x->inbox_wd); /* (moved: still watched) */
	x->rescan_at = fv_now_ms();
	return watch_inbox(x);
}

/* The status endpoint's figures: the dataset as committed, and this run's. */
static void status_fill(void *ctx, fv_status_figs *f)
{
	watch *x = ctx;
	fv_store_meta m;
	uint64_t a, d, r, v;
	if (!fv_store_meta_get(x->s, &m)) {
		fv_status_num(f, "dataset.version", (double)m.version);
		fv_status_num(f, "dataset.records", (double)m.records);
		fv_status_num(f, "dataset.train", (double)m.split[0]);
		fv_status_num(f, "dataset.val", (double)m.split[1]);
		fv_status_num(f, "dataset.test", (double)m.split[2]);
		fv_status_num(f, "dataset.classes", m.classes);
		fv_status_num(f, "dataset.rejected", (double)m.rejected);
	}
	totals(x, &a, &d, &r, &v);
	fv_status_num(f, "ingest.added", (double)a);
	fv_status_num(f, "ingest.duplicates", (double)d);
	fv_status_num(f, "ingest.rejected", (double)r);
	fv_status_num(f, "ingest.pending",
		      (double)((x->pool ? ing_pool_busy(x->pool, NULL) : 0) + ing_writer_pending(x->w)));
	fv_status_str(f, "ingest.inbox", "%s", x->cfg->watch);
	/* files stored or rejected that could not leave the inbox: an
	 * operator's to fix (their folder's permissions, a read-only mount) */
	fv_status_num(f, "ingest.stuck", (double)__atomic_load_n(&x->nstuck, __ATOMIC_RELAXED));
	if (x->failing[0]) {
		fv_status_str(f, "ingest.commit_error", "%s", x->failing);
		fv_status_num(f, "ingest.retry_in_s", (double)(x->retry_at - fv_now_ms()) / 1000);
	}
}

static int setup(watch *x)
{
	int rc;
	if ((x->idle_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return fv_err_set(errno, "eventfd: %s", strerror(errno));
	if ((x->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return fv_err_set(errno, "inotify: %s", strerror(errno));
	if ((rc = watch_inbox(x)))
		return rc;
	if ((x->cfg->pub || (x->cfg->status_ep && *x->cfg->status_ep)) && !(x->zctx = zmq_ctx_new()))
		return fv_err_set(FV_E_ZMQ, "zmq: %s", zmq_strerror(zmq_errno()));
	if (x->cfg->pub) {
		if (!(x->pub = zmq_socket(x->zctx, ZMQ_PUB)))
			return fv_err_set(FV_E_ZMQ, "zmq: %s", zmq_strerror(zmq_errno()));
		fv_sock_limit(x->pub, 0);
		if (zmq_bind(x->pub, x->cfg->pub))
			return fv_err_set(FV_E_ZMQ, "bind %s: %s", x->cfg->pub, zmq_strerror(zmq_errno()));
	}
	if ((rc = writer_open(x)))
		return rc;
	fv_status_opts so = { .endpoint = x->cfg->status_ep, .name = "ingest", .fill = status_fill, .fill_ctx = x };
	if ((rc = fv_status_new(&x->status, x->zctx, &so)))
		return rc;
	fv_status_update(x->status, 1);
	fv_store_meta m;
	if (!fv_store_meta_get(x->s, &m))
		x->published = m.version;
	return 0;
}

/* How long the loop may wait for an event: TICK_MS, or less when a flush
 * falls due sooner (while the pool is busy, its going idle wakes it). */
static int poll_ms(watch *x)
{
	if (ing_pool_busy(x->pool, NULL) || !ing_writer_pending(x->w))
		return TICK_MS;
	int64_t due = x->last_flush + x->cfg->batch_ms - fv_now_ms();
	return due <= 0 ? 0 : due < TICK_MS ? (int)due : TICK_MS;
}

int ingest_watch(const ingest_cfg *cfg, fv_store *s)
{
	watch x = { .cfg = cfg, .s = s, .ifd = -1, .idle_fd = -1 };
	int rc;
	pthread_mutex_init(&x.stuck_mu, NULL);
	fv_signals_install();
	if ((rc = setup(&x)))
		goto out;
	fv_info("watching %s (db %s%s%s)", cfg->watch, cfg->db, cfg->pub ? ", publishing on " : "",
		cfg->pub ? cfg->pub : "");
	fv_sd_ready(); /* store open, socket bound, inbox watched */
	rc = scan_inbox(&x);
	x.last_flush = fv_now_ms();
	/* every failure comes back to the top: a commit that failed for want
	 * of room is retried, anything else stops the daemon */
	while (!fv_stop_requested && !(rc && (rc = commit_failed(&x, rc)))) {
		zmq_pollitem_t it[2] = { { NULL, x.ifd, ZMQ_POLLIN, 0 }, { NULL, x.idle_fd, ZMQ_POLLIN, 0 } };
		int n = zmq_poll(it, 2, poll_ms(&x)), events = n > 0 && (it[0].revents & ZMQ_POLLIN);
		uint64_t pokes;
		if (n > 0 && (it[1].revents & ZMQ_POLLIN) && read(x.idle_fd, &pokes, sizeof pokes) < 0)
			fv_debug("eventfd: %s", strerror(errno));
		if (n < 0 && zmq_errno() != EINTR) {
			rc = fv_err_set(FV_E_ZMQ, "poll: %s", zmq_strerror(zmq_errno()));
			break;
		}
		x.last_tick = 0; /* (once per poll, whatever the time) */
		tick(&x);
		if (x.retry_at) { /* commits failed: wait, then scan the inbox again */
			if (events)
				drain_events(&x);
			if (fv_now_ms() < x.retry_at)
				continue;
			x.retry_at = 0;
			x.rescan_at = fv_now_ms();
		}
		if (events && (rc = on_events(&x)))
			continue;
		if (x.inbox_lost && (rc = inbox_again(&x)))
			continue;
		/* the writer is this thread's to flush only once the pool has
		 * handed it every file (size-full batches commit meanwhile) */
		size_t busy = ing_pool_busy(x.pool, &rc);
		if (rc)
			continue;
		if (__atomic_exchange_n(&x.recheck_soon, 0, __ATOMIC_RELAXED))
			x.rescan_at = fv_now_ms() + 4000; /* a file still being written */
		if (!busy && ing_writer_pending(x.w) && fv_now_ms() - x.last_flush >= cfg->batch_ms &&
		    (rc = flush(&x)))
			continue;
		if (cfg->rescan_s && fv_now_ms() - x.last_scan >= cfg->rescan_s * 1000 && !x.rescan_at)
			x.rescan_at = fv_now_ms(); /* the periodic scan */
		if (x.rescan_at && fv_now_ms() >= x.rescan_at && !busy) {
			x.rescan_at = 0; /* commit first: a pending file must not be taken twice */
			if (!(rc = flush(&x)))
				rc = scan_inbox(&x);
		}
	}
	fv_sd_stopping();
	if (rc == ECANCELED && fv_stop_requested)
		rc = 0; /* stopped mid-scan or mid-burst: the rest stays in the inbox */
	if (rc)
		fv_err("%s", fv_err_msg(rc)); /* said now: the drain sets details of its own */
	/* drain: what validated gets committed and moved */
	int r = x.pool ? ing_pool_close(&x.pool, 0) : 0, f = x.w ? flush(&x) : 0;
	r = r && r != ECANCELED ? r : f;
	if (r && !rc)
		fv_err("%s", fv_err_msg(r));
	rc = rc ? rc : r;
	goto done;
out:
	fv_err("%s", fv_err_msg(rc));
done:
	fv_status_destroy(&x.status);
	ing_pool_close(&x.pool, ECANCELED);
	ing_writer_destroy(&x.w);
	if (x.ifd >= 0) /* closed first: its watches go with it, not one by one */
		close(x.ifd);
	x.ifd = -1;
	dirs_clear(&x);
	free(x.dirs);
	for (size_t i = 0; i < x.nstuck; i++)
		free(x.stuck[i].path);
	free(x.stuck);
	pthread_mutex_destroy(&x.stuck_mu);
	if (x.idle_fd >= 0)
		close(x.idle_fd);
	if (x.pub)
		zmq_close(x.pub);
	if (x.zctx)
		zmq_ctx_term(x.zctx);
	return rc;
}
