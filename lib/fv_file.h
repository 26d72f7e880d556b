/* fv_file.h — small file-system steps: making a rename or unlink in a
 * directory survive a crash (fsync the directory), and dropping a file from
 * the page cache (benchmarks and tests of reads from disk). */
#ifndef FV_FILE_H
#define FV_FILE_H

/* fsync the directory `dir`. Returns 0 or errno. */
int fv_fsync_dir(const char *dir);
/* fsync the directory that holds `path` (after renaming a file into it).
 * Returns 0, ENOMEM or errno. */
int fv_fsync_parent(const char *path);
/* Drop path's pages from the page cache (POSIX_FADV_DONTNEED), so the next
 * read goes to the disk; dirty pages are written first (fdatasync), since
 * only clean ones can be dropped. Returns 0 or errno. */
int fv_file_uncache(const char *path);

#endif
