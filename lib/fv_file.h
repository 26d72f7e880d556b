/* fv_file.h — small file-system steps that durable state needs: making a
 * rename or unlink in a directory survive a crash (fsync the directory). */
#ifndef FV_FILE_H
#define FV_FILE_H

/* fsync the directory `dir`. Returns 0 or errno. */
int fv_fsync_dir(const char *dir);
/* fsync the directory that holds `path` (after renaming a file into it).
 * Returns 0, ENOMEM or errno. */
int fv_fsync_parent(const char *path);

#endif
