/* fv_curve.h — ZeroMQ CURVE for the sockets that cross hosts: key files,
 * socket options, and a ZAP handler (RFC 27) that admits only the public
 * keys in an allow-list.
 *
 * Key files hold one Z85 key (40 characters, a trailing newline allowed):
 * NAME.key the secret (mode 0600; one others can read is refused), NAME.pub
 * the public key beside it. `fovea keygen` writes them.
 *
 * An allow-list is a directory of *.pub files, or one file with a key per
 * line (a word after the key names it in logs; lines starting with '#' are
 * comments). The ZAP
 * handler re-reads it when it changes (checked at most once a second, on a
 * connection attempt), so adding or removing a worker's key needs no
 * restart; connections already made stay. */
#ifndef FV_CURVE_H
#define FV_CURVE_H

#include <stddef.h>
#include <stdint.h>

#define FV_CURVE_Z85 40 /* characters in a Z85 key (32 bytes) */

typedef struct fv_curve_keypair {
	char pub[FV_CURVE_Z85 + 1];
	char sec[FV_CURVE_Z85 + 1];
} fv_curve_keypair;

/* Read one Z85 key from path into out (41 bytes, NUL-terminated). With
 * secret != 0 a file that others (not owner or group) may read or write is
 * refused. Returns 0, FV_E_NOTFOUND (missing), FV_E_FORMAT (wrong length or
 * not Z85), FV_E_CONFIG (secret readable by others), or an errno; the
 * detail names the file. */
int fv_curve_key_read(const char *path, int secret, char *out);

/* NAME.pub for NAME.key (or PATH.pub for a PATH not ending in .key) into
 * out[len]. Returns 0 or ENAMETOOLONG. */
int fv_curve_pub_path(const char *secret_path, char *out, size_t len);

/* Load a key pair: the secret from secret_path, the public key from
 * pub_path (NULL: the .pub beside the secret; if that file is absent the
 * public key is derived). A public key that does not belong to the secret
 * is FV_E_MISMATCH. Other returns as fv_curve_key_read. */
int fv_curve_keypair_load(const char *secret_path, const char *pub_path, fv_curve_keypair *kp);

/* Make a new key pair and write DIR/NAME.key (0600) and DIR/NAME.pub
 * (0644); never overwrites (EEXIST). kp (may be NULL) receives the keys. */
int fv_curve_keygen(const char *dir, const char *name, fv_curve_keypair *kp);

/* `fovea keygen [--out DIR] [--name NAME]`: prints the public key and the
 * files written to stdout. argv[0] is the program or "keygen" (a "keygen"
 * in argv[1] is skipped too). Returns the process exit status. */
int fv_keygen_main(int argc, char **argv);

/* Make sock a CURVE server with this key pair (ZAP domain "fovea"). Set
 * before bind. Returns 0 or FV_E_ZMQ. */
int fv_curve_server_setup(void *sock, const fv_curve_keypair *kp);
/* Make sock a CURVE client with its own key pair, trusting only the server
 * whose public key is server_pub (Z85). Set before connect. */
int fv_curve_client_setup(void *sock, const fv_curve_keypair *kp, const char *server_pub);

/* ------------------------------------------------------------ ZAP */

typedef struct fv_zap fv_zap;

/* Start the ZAP handler of ctx: binds inproc://zeromq.zap.01 (one per
 * context) and answers in its own thread. Admits CURVE clients whose key is
 * in allow_path or equals also (a Z85 public key, may be NULL: a server
 * admits its own key, which its local workers use); denies everything else,
 * logging each denied key once (by its first 8 Z85 characters). Create it
 * before binding the server socket. Returns 0, FV_E_ZMQ, ENOMEM, or the
 * allow-list's load error (the detail names file and line). */
int fv_zap_new(fv_zap **out, void *ctx, const char *allow_path, const char *also);
/* Stop the thread, close its socket. Call before zmq_ctx_term. *z = NULL. */
void fv_zap_destroy(fv_zap **z);
/* Re-read the allow-list now. On failure the old list stays in force.
 * Returns 0 or the load error. */
int fv_zap_reload(fv_zap *z);
/* Handshakes admitted and denied so far; keys in force now. */
void fv_zap_counts(fv_zap *z, uint64_t *allowed, uint64_t *denied, int *nkeys);

/* ------------------------------------------------------------ handshake log */

typedef struct fv_curve_mon fv_curve_mon;

/* A log of sock's handshakes (a zmq socket monitor), so failures reach it
 * as one clear line each: a peer with the other mechanism (plain text
 * against CURVE or the reverse), a wrong server key, our key refused. who
 * prefixes the lines; server says which side we are; our_pub (may be NULL)
 * names our key when refused. Each kind of failure is logged once a minute
 * at most (a refused peer retries constantly), also across re-attaching to
 * a new socket after a reconnect. Returns 0 or ENOMEM. */
int fv_curve_mon_new(fv_curve_mon **out, const char *who, int server, const char *our_pub);
/* Watch sock (before its bind/connect); detaches from any previous one. The
 * thread that owns sock polls fv_curve_mon_socket() for ZMQ_POLLIN and calls
 * fv_curve_mon_read. Returns 0 or FV_E_ZMQ. */
int fv_curve_mon_attach(fv_curve_mon *m, void *ctx, void *sock);
/* Stop watching; call while the socket is still open (before zmq_close). */
void fv_curve_mon_detach(fv_curve_mon *m);
/* The socket to poll, or NULL when m is NULL or detached. */
void *fv_curve_mon_socket(fv_curve_mon *m);
/* Log what happened. Returns the handshakes that failed since the last call. */
int fv_curve_mon_read(fv_curve_mon *m);
/* Detach and free. *m = NULL. */
void fv_curve_mon_destroy(fv_curve_mon **m);

#endif
