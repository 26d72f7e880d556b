/* fv_augc_shm.c — the augment client's shared-memory output segments
 * (memfds a local worker opens as /proc/PID/fd/N). See augc_seg in
 * fv_augc_int.h for the reuse rule that keeps late writers harmless. */
#include "fv_augc_int.h"
#include "fv_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void fv_augc_seg_destroy(augc_seg *s)
{
	if (!s)
		return;
	if (s->addr)
		munmap(s->addr, s->size);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static int fits(const augc_seg *s, size_t size)
{
	return s->size >= size && s->size / 2 <= size;
}

int fv_augc_seg_get(fv_augc *c, size_t size, const augc_worker *w, augc_seg **out)
{
	augc_seg **pp, *s, **any = NULL;
	*out = NULL;
	for (pp = &c->free_segs; (s = *pp); pp = &s->next) {
		if (!fits(s, size))
			continue;
		if (s->writer_len == w->idlen && !memcmp(s->writer, w->id, w->idlen))
			break;
		if (!any)
			any = pp;
	}
	if (!s && any && c->nfree_segs > c->nworkers) /* else make one for w */
		s = *(pp = any);
	if (s) {
		*pp = s->next;
		s->next = NULL;
		c->nfree_segs--;
		goto found;
	}
	if (!(s = calloc(1, sizeof *s)))
		return ENOMEM;
	s->size = size;
	/* workers key their mappings on the id, and check it in the memfd's
	 * name: the /proc path alone is not unique once a closed fd number is
	 * reused, and a request read late could otherwise name a newer
	 * segment */
	s->id = ++c->next_seg_id;
	char name[48];
	snprintf(name, sizeof name, "fovea-augc-%llu", (unsigned long long)s->id);
	s->fd = memfd_create(name, MFD_CLOEXEC);
	if (s->fd < 0 || ftruncate(s->fd, (off_t)size) ||
	    (s->addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0)) == MAP_FAILED) {
		int rc = errno;
		s->addr = NULL;
		fv_augc_seg_destroy(s);
		return fv_err_set(rc, "augment client: shared memory of %zu bytes: %s", size,
				  strerror(rc));
	}
	snprintf(s->path, sizeof s->path, "/proc/%d/fd/%d", (int)getpid(), s->fd);
found:
	memcpy(s->writer, w->id, w->idlen);
	s->writer_len = w->idlen;
	*out = s;
	return 0;
}

void fv_augc_seg_put(fv_augc *c, augc_seg *s)
{
	if (!s)
		return;
	if (c->nfree_segs >= c->o.window + 2 * c->nworkers + 2) {
		fv_augc_seg_destroy(s);
		return;
	}
	s->next = c->free_segs;
	c->free_segs = s;
	c->nfree_segs++;
}
