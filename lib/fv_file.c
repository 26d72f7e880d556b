/* fv_file.c — see fv_file.h. */
#include "fv_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fv_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int rc = fsync(fd) ? errno : 0;
	close(fd);
	return rc;
}

int fv_fsync_parent(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return ENOMEM;
	int rc = fv_fsync_dir(dirname(copy));
	free(copy);
	return rc;
}

int fv_file_uncache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	if (fd < 0)
		return errno;
	rc = fdatasync(fd) ? errno : posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return rc;
}
