/* fv_curve.c — CURVE key files, socket setup, `fovea keygen`, and the ZAP
 * handler thread that checks connecting workers against an allow-list
 * (see fv_curve.h). */
#include "fv_curve.h"
#include "fv_config.h"
#include "fv_daemon.h"
#include "fv_error.h"
#include "fv_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "fovea"
#define ZAP_RELOAD_MS 1000
#define ZAP_MAX_LOGGED 256

static const char z85_chars[] =
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/* 0 if s[0..FV_CURVE_Z85) is a Z85 key; decodes into bin (32 bytes) if non-NULL. */
static int z85_check(const char *s, uint8_t *bin)
{
	uint8_t tmp[32];
	char key[FV_CURVE_Z85 + 1];
	for (int i = 0; i < FV_CURVE_Z85; i++)
		if (!s[i] || !strchr(z85_chars, s[i]))
			return -1;
	memcpy(key, s, FV_CURVE_Z85);
	key[FV_CURVE_Z85] = 0;
	return zmq_z85_decode(bin ? bin : tmp, key) ? 0 : -1;
}

/* ------------------------------------------------------------ key files */

int fv_curve_key_read(const char *path, int secret, char *out)
{
	char buf[256];
	struct stat st;
	int rc = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return fv_err_set(FV_E_NOTFOUND, "%s: no such key file", path);
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st)) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fv_err_set(FV_E_FORMAT, "%s: not a regular file", path);
		goto out;
	}
	if (secret && (st.st_mode & (S_IROTH | S_IWOTH))) {
		rc = fv_err_set(FV_E_CONFIG, "%s: secret key is readable by others (mode %04o); "
				"refusing it: chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if ((n = read(fd, buf, sizeof buf - 1)) < 0) {
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = 0;
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
		buf[--n] = 0;
	if (n != FV_CURVE_Z85 || memchr(buf, 0, n)) {
		rc = fv_err_set(FV_E_FORMAT, "%s: a key is %d Z85 characters, this file holds %s%zd",
				path, FV_CURVE_Z85, n == sizeof buf - 1 ? "at least " : "", n);
		goto out;
	}
	if (z85_check(buf, NULL)) {
		rc = fv_err_set(FV_E_FORMAT, "%s: not a Z85 key (bad characters)", path);
		goto out;
	}
	memcpy(out, buf, FV_CURVE_Z85 + 1);
out:
	explicit_bzero(buf, sizeof buf);
	close(fd);
	return rc;
}

int fv_curve_pub_path(const char *secret_path, char *out, size_t len)
{
	size_t n = strlen(secret_path);
	if (n > 4 && !strcmp(secret_path + n - 4, ".key"))
		n -= 4;
	if ((size_t)snprintf(out, len, "%.*s.pub", (int)n, secret_path) >= len)
		return fv_err_set(ENAMETOOLONG, "%s: path too long", secret_path);
	return 0;
}

int fv_curve_keypair_load(const char *secret_path, const char *pub_path, fv_curve_keypair *kp)
{
	char beside[4096], derived[FV_CURVE_Z85 + 1];
	int rc;
	memset(kp, 0, sizeof *kp);
	if ((rc = fv_curve_key_read(secret_path, 1, kp->sec)))
		goto out;
	if (zmq_curve_public(derived, kp->sec)) {
		rc = fv_err_set(FV_E_ZMQ, "%s: cannot derive the public key: %s", secret_path,
				zmq_strerror(zmq_errno()));
		goto out;
	}
	if (!pub_path) {
		if ((rc = fv_curve_pub_path(secret_path, beside, sizeof beside)))
			goto out;
		pub_path = beside;
		if (access(beside, F_OK) && errno == ENOENT) {
			memcpy(kp->pub, derived, sizeof derived);
			goto out;
		}
	}
	if ((rc = fv_curve_key_read(pub_path, 0, kp->pub)))
		goto out;
	if (strcmp(kp->pub, derived))
		rc = fv_err_set(FV_E_MISMATCH, "%s is not the public key of %s", pub_path, secret_path);
out:
	if (rc)
		explicit_bzero(kp, sizeof *kp);
	return rc;
}

static int write_key(const char *path, const char *key, mode_t mode)
{
	char line[FV_CURVE_Z85 + 2];
	int rc = 0;
	snprintf(line, sizeof line, "%s\n", key);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return fv_err_set(errno, "%s: %s", path, strerror(errno));
	if (fchmod(fd, mode) || write(fd, line, FV_CURVE_Z85 + 1) != FV_CURVE_Z85 + 1 || fsync(fd))
		rc = fv_err_set(errno ? errno : EIO, "%s: %s", path, strerror(errno ? errno : EIO));
	if (close(fd) && !rc)
		rc = fv_err_set(errno, "%s: %s", path, strerror(errno));
	explicit_bzero(line, sizeof line);
	if (rc)
		unlink(path);
	return rc;
}

int fv_curve_keygen(const char *dir, const char *name, fv_curve_keypair *out)
{
	char sec_path[4096], pub_path[4096];
	fv_curve_keypair kp;
	int rc;
	if (!name || !*name || *name == '.' || strchr(name, '/'))
		return fv_err_set(FV_E_CONFIG, "keygen: bad key name '%s'", name ? name : "");
	if ((size_t)snprintf(sec_path, sizeof sec_path, "%s/%s.key", dir, name) >= sizeof sec_path ||
	    (size_t)snprintf(pub_path, sizeof pub_path, "%s/%s.pub", dir, name) >= sizeof pub_path)
		return fv_err_set(ENAMETOOLONG, "keygen: %s/%s: path too long", dir, name);
	if (!access(pub_path, F_OK))
		return fv_err_set(EEXIST, "%s exists; not overwriting a key", pub_path);
	if (zmq_curve_keypair(kp.pub, kp.sec))
		return fv_err_set(FV_E_UNSUPPORTED, "keygen: this libzmq has no CURVE: %s",
				  zmq_strerror(zmq_errno()));
	if ((rc = write_key(sec_path, kp.sec, 0600)))
		goto out;
	if ((rc = write_key(pub_path, kp.pub, 0644))) {
		unlink(sec_path);
		goto out;
	}
	if (out)
		*out = kp;
out:
	explicit_bzero(&kp, sizeof kp);
	return rc;
}

struct keygen_cfg {
	char *out, *name;
};

static const fv_cfg_opt keygen_options[] = {
	{ "out", FV_CFG_STR, offsetof(struct keygen_cfg, out), ".", 0, 0, NULL,
	  "directory to write NAME.key (secret, mode 0600) and NAME.pub into" },
	{ "name", FV_CFG_STR, offsetof(struct keygen_cfg, name), "fovea", 0, 0, NULL,
	  "base name of the two files" },
	FV_CFG_END
};

/* An entry point like main(): it alone here prints to stdout. argv[0] is
 * the program or "keygen"; a leading "keygen" argument is also accepted, so
 * a caller may pass its whole argv. */
int fv_keygen_main(int argc, char **argv)
{
	struct keygen_cfg cfg;
	fv_curve_keypair kp;
	int npos = 0, help = 0, rc, status = 0;
	if ((rc = fv_cfg_defaults(keygen_options, &cfg)) ||
	    (rc = fv_cfg_parse_args(keygen_options, &cfg, argc, argv, &npos, &help)) ||
	    (npos && (npos > 1 || strcmp(argv[1], "keygen")))) {
		fprintf(stderr, "fovea keygen: %s\n", rc ? fv_err_msg(rc) : "unexpected argument");
		status = 2;
		goto out;
	}
	if (help) {
		printf("usage: fovea keygen [--out DIR] [--name NAME]\n\n"
		       "Makes a CURVE key pair for tcp:// augment endpoints: give the broker\n"
		       "(trainer, evaluator) its own pair, each worker host another, and list\n"
		       "the workers' .pub files in the broker's allow-list.\n\n");
		fv_cfg_help(keygen_options, stdout, 0);
		goto out;
	}
	if ((rc = fv_curve_keygen(cfg.out, cfg.name, &kp))) {
		fprintf(stderr, "fovea keygen: %s\n", fv_err_msg(rc));
		status = 1;
		goto out;
	}
	printf("public key %s\nwrote %s/%s.key (secret, 0600) and %s/%s.pub\n", kp.pub, cfg.out,
	       cfg.name, cfg.out, cfg.name);
	explicit_bzero(&kp, sizeof kp);
out:
	fv_cfg_free(keygen_options, &cfg);
	return status;
}

/* ------------------------------------------------------------ sockets */

int fv_curve_server_setup(void *sock, const fv_curve_keypair *kp)
{
	int one = 1;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, FV_CURVE_Z85) ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)))
		return fv_err_set(FV_E_ZMQ, "CURVE server setup: %s", zmq_strerror(zmq_errno()));
	return 0;
}

int fv_curve_client_setup(void *sock, const fv_curve_keypair *kp, const char *server_pub)
{
	if (z85_check(server_pub, NULL))
		return fv_err_set(FV_E_FORMAT, "CURVE client setup: server key is not Z85");
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, FV_CURVE_Z85) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp->pub, FV_CURVE_Z85) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, FV_CURVE_Z85))
		return fv_err_set(FV_E_ZMQ, "CURVE client setup: %s", zmq_strerror(zmq_errno()));
	return 0;
}

/* ------------------------------------------------------------ allow-list */

typedef struct zkey {
	uint8_t key[32];
	char label[48];
} zkey;

typedef struct klist {
	zkey *v;
	int n, cap;
} klist;

static int klist_add(klist *l, const char *z85, const char *label)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		zkey *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	zkey *k = &l->v[l->n];
	if (z85_check(z85, k->key))
		return FV_E_FORMAT;
	snprintf(k->label, sizeof k->label, "%s", label);
	l->n++;
	return 0;
}

static int load_dir(const char *path, klist *l)
{
	char file[4096], key[FV_CURVE_Z85 + 1];
	int rc = 0;
	DIR *d = opendir(path);
	if (!d)
		return fv_err_set(errno == ENOENT ? FV_E_NOTFOUND : errno, "allow-list %s: %s",
				  path, strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n < 5 || strcmp(e->d_name + n - 4, ".pub"))
			continue;
		snprintf(file, sizeof file, "%s/%s", path, e->d_name);
		if ((rc = fv_curve_key_read(file, 0, key)))
			break;
		if ((rc = klist_add(l, key, e->d_name)))
			break;
	}
	closedir(d);
	return rc;
}

/* A file of keys, one a line: "KEY [label ...]"; lines starting with '#'
 * are comments ('#' is a Z85 character, so only there). */
static int load_file(const char *path, klist *l)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = 0, lineno = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return fv_err_set(errno == ENOENT ? FV_E_NOTFOUND : errno, "allow-list %s: %s",
				  path, strerror(errno));
	while (getline(&line, &cap, f) >= 0) {
		char *s = line + strspn(line, " \t\r\n"), label[48];
		lineno++;
		if (!*s || *s == '#')
			continue;
		size_t klen = strcspn(s, " \t\r\n");
		char *rest = s + klen;
		rest += strspn(rest, " \t");
		size_t llen = *rest == '#' ? 0 : strcspn(rest, " \t\r\n");
		if (llen)
			snprintf(label, sizeof label, "%.*s", (int)llen, rest);
		else
			snprintf(label, sizeof label, "line %d", lineno);
		if (klen != FV_CURVE_Z85 || (rc = klist_add(l, s, label))) {
			rc = rc == ENOMEM ? ENOMEM : fv_err_set(FV_E_FORMAT, "%s:%d: not a Z85 "
								"public key", path, lineno);
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static int load_list(const char *path, klist *l)
{
	struct stat st;
	if (stat(path, &st))
		return fv_err_set(errno == ENOENT ? FV_E_NOTFOUND : errno, "allow-list %s: %s",
				  path, strerror(errno));
	return S_ISDIR(st.st_mode) ? load_dir(path, l) : load_file(path, l);
}

/* ------------------------------------------------------------ ZAP */

struct fv_zap {
	void *sock;
	int stopfd;
	pthread_t thr;
	int started;
	pthread_mutex_t mu;
	char *path;
	klist keys;
	int64_t loaded_ms;
	uint8_t also[32];
	int has_also;
	uint8_t logged[ZAP_MAX_LOGGED][32]; /* denied keys already logged */
	int nlogged;
	uint64_t allowed, denied;
	char last_error[256];    /* of the last reload, logged once */
};

int fv_zap_reload(fv_zap *z)
{
	klist l = { 0 };
	int rc = load_list(z->path, &l);
	pthread_mutex_lock(&z->mu);
	z->loaded_ms = fv_now_ms();
	if (!rc) {
		free(z->keys.v);
		z->keys = l;
		l.v = NULL;
	}
	pthread_mutex_unlock(&z->mu);
	free(l.v);
	return rc;
}

/* The label of key, or NULL if it is not admitted. Called with z->mu held. */
static const char *zap_lookup(fv_zap *z, const uint8_t *key)
{
	if (z->has_also && !memcmp(key, z->also, 32))
		return "(the server's own key)";
	for (int i = 0; i < z->keys.n; i++)
		if (!memcmp(z->keys.v[i].key, key, 32))
			return z->keys.v[i].label;
	return NULL;
}

/* Decide one request: frames as RFC 27 orders them. Returns 1 to admit;
 * fills user (the key's label) and why. */
static int zap_decide(fv_zap *z, zmq_msg_t *f, int nf, char *user, size_t ulen,
		      const char **why)
{
	char addr[64], z85[FV_CURVE_Z85 + 1];
	*why = "OK";
	if (nf < 6 || zmq_msg_size(&f[0]) != 3 || memcmp(zmq_msg_data(&f[0]), "1.0", 3)) {
		*why = "malformed ZAP request";
		return 0;
	}
	snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (char *)zmq_msg_data(&f[3]));
	if (zmq_msg_size(&f[5]) != 5 || memcmp(zmq_msg_data(&f[5]), "CURVE", 5) || nf < 7 ||
	    zmq_msg_size(&f[6]) != 32) {
		*why = "only CURVE clients are admitted";
		fv_debug("zap: refused a %.*s connection from %s", (int)zmq_msg_size(&f[5]),
			 (char *)zmq_msg_data(&f[5]), addr);
		return 0;
	}
	const uint8_t *key = zmq_msg_data(&f[6]);
	zmq_z85_encode(z85, key, 32);
	if (fv_now_ms() - z->loaded_ms >= ZAP_RELOAD_MS) {
		int rc = fv_zap_reload(z);
		/* each problem once, not on every retry of every worker */
		if (rc && strncmp(z->last_error, fv_err_msg(rc), sizeof z->last_error - 1))
			fv_warn("zap: keeping the previous allow-list: %s", fv_err_msg(rc));
		snprintf(z->last_error, sizeof z->last_error, "%s", rc ? fv_err_msg(rc) : "");
	}
	pthread_mutex_lock(&z->mu);
	const char *label = zap_lookup(z, key);
	int admit = label != NULL;
	if (admit) {
		snprintf(user, ulen, "%s", label);
		z->allowed++;
		fv_info("zap: admitted key %.8s… (%s) from %s", z85, label, addr);
	} else {
		int seen = 0;
		for (int i = 0; i < z->nlogged && !seen; i++)
			seen = !memcmp(z->logged[i], key, 32);
		if (!seen && z->nlogged < ZAP_MAX_LOGGED) {
			memcpy(z->logged[z->nlogged++], key, 32);
			fv_warn("zap: refused unknown key %.8s… from %s: not in the allow-list %s "
				"(logged once per key%s)", z85, addr, z->path,
				z->nlogged == ZAP_MAX_LOGGED ? "; no more unknown keys will be" : "");
		}
		z->denied++;
		*why = "key not in the allow-list";
	}
	pthread_mutex_unlock(&z->mu);
	return admit;
}

static void zap_handle(fv_zap *z)
{
	zmq_msg_t f[8];
	int nf = 0, more = 1;
	char user[64] = "";
	const char *why;
	while (more) {
		zmq_msg_t tmp, *m = nf < 8 ? &f[nf] : &tmp;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, z->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			if (!nf)
				return; /* nothing there after all */
			break;
		}
		more = zmq_msg_more(m);
		if (m == &tmp)
			zmq_msg_close(m);
		else
			nf++;
	}
	int admit = zap_decide(z, f, nf, user, sizeof user, &why);
	/* reply: version, request id, status code, status text, user id, metadata */
	const char *code = admit ? "200" : "400";
	zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
	if (nf > 1)
		zmq_send(z->sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
	else
		zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
	zmq_send(z->sock, code, 3, ZMQ_SNDMORE);
	zmq_send(z->sock, why, strlen(why), ZMQ_SNDMORE);
	zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(z->sock, "", 0, 0);
	for (int i = 0; i < nf; i++)
		zmq_msg_close(&f[i]);
}

static void *zap_main(void *arg)
{
	fv_zap *z = arg;
	for (;;) {
		zmq_pollitem_t items[2] = {
			{ .socket = z->sock, .events = ZMQ_POLLIN },
			{ .fd = z->stopfd, .events = ZMQ_POLLIN },
		};
		if (zmq_poll(items, 2, -1) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			fv_err("zap: poll: %s; no more workers can be admitted",
			       zmq_strerror(zmq_errno()));
			break;
		}
		if (items[1].revents & ZMQ_POLLIN)
			break;
		if (items[0].revents & ZMQ_POLLIN)
			zap_handle(z);
	}
	return NULL;
}

int fv_zap_new(fv_zap **out, void *ctx, const char *allow_path, const char *also)
{
	fv_zap *z;
	int rc, linger = 0;
	*out = NULL;
	if (!allow_path || !*allow_path)
		return fv_err_set(FV_E_CONFIG, "zap: no allow-list of worker keys given");
	if (!(z = calloc(1, sizeof *z)))
		return ENOMEM;
	z->stopfd = -1;
	pthread_mutex_init(&z->mu, NULL);
	if (!(z->path = strdup(allow_path))) {
		rc = ENOMEM;
		goto fail;
	}
	if (also) {
		if (z85_check(also, z->also)) {
			rc = fv_err_set(FV_E_FORMAT, "zap: the server's own key is not Z85");
			goto fail;
		}
		z->has_also = 1;
	}
	if ((rc = fv_zap_reload(z)))
		goto fail;
	if ((z->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = fv_err_set(errno, "zap: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (!(z->sock = zmq_socket(ctx, ZMQ_REP)) ||
	    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) ||
	    zmq_bind(z->sock, ZAP_ENDPOINT)) {
		rc = fv_err_set(FV_E_ZMQ, "zap: bind %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
		goto fail;
	}
	if ((rc = pthread_create(&z->thr, NULL, zap_main, z))) {
		rc = fv_err_set(rc, "zap: thread: %s", strerror(rc));
		goto fail;
	}
	z->started = 1;
	fv_info("zap: %d worker key%s allowed from %s", z->keys.n, z->keys.n == 1 ? "" : "s",
		allow_path);
	*out = z;
	return 0;
fail:
	fv_zap_destroy(&z);
	return rc;
}

void fv_zap_destroy(fv_zap **pz)
{
	fv_zap *z = *pz;
	if (!z)
		return;
	*pz = NULL;
	if (z->started) {
		uint64_t one = 1;
		if (write(z->stopfd, &one, sizeof one) < 0)
			fv_warn("zap: stop: %s", strerror(errno));
		pthread_join(z->thr, NULL);
	}
	if (z->sock)
		zmq_close(z->sock);
	if (z->stopfd >= 0)
		close(z->stopfd);
	free(z->keys.v);
	free(z->path);
	pthread_mutex_destroy(&z->mu);
	free(z);
}

void fv_zap_counts(fv_zap *z, uint64_t *allowed, uint64_t *denied, int *nkeys)
{
	pthread_mutex_lock(&z->mu);
	if (allowed)
		*allowed = z->allowed;
	if (denied)
		*denied = z->denied;
	if (nkeys)
		*nkeys = z->keys.n;
	pthread_mutex_unlock(&z->mu);
}

/* ------------------------------------------------------------ handshake log */

enum { MON_MECH, MON_CRYPTO, MON_AUTH, MON_CUT, MON_OTHER, MON_KINDS };
#define MON_QUIET_MS 60000

struct fv_curve_mon {
	void *target, *pair;
	unsigned attached;       /* count, for unique monitor addresses */
	char who[32];
	char pub[FV_CURVE_Z85 + 1];
	int server;
	int64_t next_log[MON_KINDS];
};

int fv_curve_mon_new(fv_curve_mon **out, const char *who, int server, const char *our_pub)
{
	fv_curve_mon *m;
	*out = NULL;
	if (!(m = calloc(1, sizeof *m)))
		return ENOMEM;
	snprintf(m->who, sizeof m->who, "%s", who);
	snprintf(m->pub, sizeof m->pub, "%s", our_pub ? our_pub : "");
	m->server = server;
	*out = m;
	return 0;
}

int fv_curve_mon_attach(fv_curve_mon *m, void *ctx, void *sock)
{
	char addr[64];
	int linger = 0;
	fv_curve_mon_detach(m);
	snprintf(addr, sizeof addr, "inproc://fv-curve-mon-%p-%u", (void *)m, m->attached++);
	if (zmq_socket_monitor(sock, addr, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
			       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
		goto fail;
	m->target = sock;
	if (!(m->pair = zmq_socket(ctx, ZMQ_PAIR)) ||
	    zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof linger) || zmq_connect(m->pair, addr))
		goto fail;
	return 0;
fail:;
	int rc = fv_err_set(FV_E_ZMQ, "%s: socket monitor: %s", m->who, zmq_strerror(zmq_errno()));
	fv_curve_mon_detach(m);
	return rc;
}

void fv_curve_mon_detach(fv_curve_mon *m)
{
	if (m->target)
		zmq_socket_monitor(m->target, NULL, 0);
	if (m->pair)
		zmq_close(m->pair);
	m->target = m->pair = NULL;
}

void *fv_curve_mon_socket(fv_curve_mon *m)
{
	return m ? m->pair : NULL;
}

static void mon_log(fv_curve_mon *m, int kind, uint32_t value, const char *ep)
{
	int64_t now = fv_now_ms();
	if (now < m->next_log[kind])
		return;
	m->next_log[kind] = now + MON_QUIET_MS;
	if (m->server) {
		if (kind == MON_MECH)
			fv_warn("%s: refused a peer on %s that speaks another mechanism (plain text "
				"where CURVE keys are set, or CURVE where none are)", m->who, ep);
		else if (kind == MON_CRYPTO)
			fv_warn("%s: a CURVE handshake on %s failed (a worker whose --server-key "
				"is not our public key?)", m->who, ep);
		else if (kind == MON_CUT)
			fv_debug("%s: a peer on %s hung up during the handshake: %s", m->who, ep,
				 strerror((int)value));
		else if (kind == MON_OTHER)
			fv_warn("%s: a handshake on %s failed (error 0x%x)", m->who, ep, value);
		/* MON_AUTH: the ZAP handler has said which key, once */
	} else if (kind == MON_MECH) {
		fv_err("%s: %s %s", m->who, ep, *m->pub
		       ? "does not use CURVE (or not on this endpoint): drop --curve-key/--server-key?"
		       : "requires CURVE: give --curve-key (ours) and --server-key (its public key)");
	} else if (kind == MON_CRYPTO) {
		fv_err("%s: CURVE handshake with %s failed: is --server-key its public key?", m->who, ep);
	} else if (kind == MON_AUTH) {
		fv_err("%s: %s refused our key %.8s… (status %u): add our .pub to its allow-list",
		       m->who, ep, m->pub, value);
	} else if (kind == MON_CUT) {
		fv_warn("%s: %s hung up during the handshake (%s): %s", m->who, ep,
			strerror((int)value), *m->pub ? "does it know our key?"
			: "does it want CURVE keys?");
	} else {
		fv_err("%s: handshake with %s failed (error 0x%x)", m->who, ep, value);
	}
}

int fv_curve_mon_read(fv_curve_mon *m)
{
	int failed = 0;
	while (m->pair) {
		zmq_msg_t ev, ep;
		char where[128];
		zmq_msg_init(&ev);
		zmq_msg_init(&ep);
		if (zmq_msg_recv(&ev, m->pair, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			zmq_msg_close(&ep);
			break;
		}
		int ok = zmq_msg_more(&ev) && zmq_msg_recv(&ep, m->pair, 0) >= 0 &&
			 zmq_msg_size(&ev) == 6;
		if (ok) {
			uint16_t id;
			uint32_t value;
			memcpy(&id, zmq_msg_data(&ev), 2);
			memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
			snprintf(where, sizeof where, "%.*s", (int)zmq_msg_size(&ep),
				 (char *)zmq_msg_data(&ep));
			if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
				if (!m->server) /* a new problem after a success is news again */
					memset(m->next_log, 0, sizeof m->next_log);
			} else {
				failed++;
				int kind = id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? MON_AUTH
					: id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ? MON_CUT
					: value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? MON_MECH
					: value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC ? MON_CRYPTO
					: MON_OTHER;
				mon_log(m, kind, value, where);
			}
		}
		zmq_msg_close(&ev);
		zmq_msg_close(&ep);
	}
	return failed;
}

void fv_curve_mon_destroy(fv_curve_mon **pm)
{
	fv_curve_mon *m = *pm;
	if (!m)
		return;
	*pm = NULL;
	fv_curve_mon_detach(m);
	free(m);
}
