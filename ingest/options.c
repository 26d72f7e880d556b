/* options.c — fovea-ingest's option table (fv_config): the command line,
 * config files and --help all come from here; and its malloc policy. Shared
 * with the benchmark. */
#include <malloc.h>
#include <stddef.h>

#include "ingest.h"

#define O(f) offsetof(ingest_cfg, f)
const fv_cfg_opt ingest_options[] = {
	{ "db", FV_CFG_STR, O(db), NULL, 1, 0, NULL, "dataset directory (created if missing)" },
	{ "split", FV_CFG_ENUM, O(split), "train", 1, 0, "train|val|test", "split the records go to" },
	{ "val-fraction", FV_CFG_DOUBLE, O(val_fraction), "0", 0, 1, NULL,
	  "hold this share out to val, chosen by content hash (deterministic)" },
	{ "resize", FV_CFG_INT, O(resize), "0", 0, 65535, NULL,
	  "resize the shorter side to N (never upscales); 0 keeps the size" },
	{ "quality", FV_CFG_INT, O(quality), "90", 1, 100, NULL, "JPEG quality when re-encoding" },
	{ "encoding", FV_CFG_ENUM, O(encoding), "jpeg", 1, 0, "jpeg|raw",
	  "how folder/list images are stored (IDX is always raw)" },
	{ "jobs", FV_CFG_INT, O(jobs), "2", 1, 256, NULL, "decode/validate threads (one writer)" },
	{ "max-mpixels", FV_CFG_INT, O(max_mpixels), "100", 1, 100000, NULL,
	  "refuse images over this many megapixels (checked from the header)" },
	{ "labels", FV_CFG_STR, O(labels), NULL, 1, 0, NULL, "class names, one per line, in index order" },
	{ "watch", FV_CFG_STR, O(watch), NULL, 1, 0, NULL, "inbox to watch: INBOX/<class>/<image>" },
	{ "pub", FV_CFG_STR, O(pub), NULL, 1, 0, NULL, "ZMQ PUB endpoint for DatasetUpdated (watch)" },
	{ "status-endpoint", FV_CFG_STR, O(status_ep), "", 1, 0, NULL,
	  "watch: answer fovea status here (tcp://*:5570, ipc://PATH; empty = off)" },
	{ "batch", FV_CFG_INT, O(batch), "1000", 1, 1000000, NULL,
	  "records per batch (at most; one dataset version each)" },
	{ "batch-ms", FV_CFG_INT, O(batch_ms), "500", 1, 3600000, NULL,
	  "watch: commit waiting files at least this often" },
	{ "rescan-s", FV_CFG_INT, O(rescan_s), "60", 0, 86400, NULL,
	  "watch: also scan the inbox this often, for files no event announced (NFS/SMB, hard links; 0 = never)" },
	{ "delete-stored", FV_CFG_BOOL, O(delete_stored), "false", 1, 0, NULL,
	  "watch: delete an inbox file once stored (or found stored already) instead of moving it to .done" },
	{ "map-mb", FV_CFG_INT, O(map_mb), "256", 1, 1 << 24, NULL,
	  "initial map size of a new dataset (it grows by itself)" },
	{ "recheck", FV_CFG_BOOL, O(recheck), "false", 1, 0, NULL,
	  "decode files already ingested (same path, size, times, inode) again instead of skipping them" },
	{ "nosync", FV_CFG_BOOL, O(nosync), "false", 1, 0, NULL,
	  "no fsync at all (faster; a system crash may lose or corrupt the dataset)" },
	{ "progress", FV_CFG_DOUBLE, O(progress), "10", 0, 86400, NULL,
	  "folders, lists, IDX: a progress line at most every this many seconds (0 = none)" },
	{ "log-level", FV_CFG_ENUM, O(log_level), "info", 1, 0, "error|warn|info|debug",
	  "what goes to stderr" },
	FV_CFG_END
};

void ingest_malloc_setup(void)
{
	/* glibc's defaults hand memory back to the kernel as soon as 128 KB lie
	 * free at the top of a heap (after growing the limit only when a mapped
	 * block is freed). Ingest frees and takes back the same sizes over and
	 * over: TurboJPEG's work buffers per image, file bytes per item, LMDB's
	 * dirty pages per commit, each on its own thread's heap; so by default
	 * much of that memory was trimmed and faulted in again, page by page —
	 * about a tenth of the CPU of a JPEG ingest (bench ingest, perf). Keep
	 * up to 64 MB free per heap, and serve blocks up to 32 MB from the heaps
	 * (setting one limit freezes the other at its default). And one heap
	 * for all threads: decoders and the commit thread free each other's
	 * blocks, and pools and writers (a run per source) start new threads,
	 * which glibc hands the old threads' heaps in another order — so with a
	 * heap per thread each new set of threads grew its heaps again. The
	 * lock it costs is taken a few times per image. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_ARENA_MAX, 1);
}
