/* trainer/rounds.h — reading a run's continual rounds (RUNDIR/rounds.jsonl,
 * the trainer's) with their verdicts (RUNDIR/verdicts.jsonl, the
 * evaluator's), for `fovea-trainer rounds` and `fovea status`. */
#ifndef FV_TRAINER_ROUNDS_H
#define FV_TRAINER_ROUNDS_H

#include <stdint.h>
#include <stdio.h>

/* Where the loop stands, from RUNDIR/rounds.jsonl (trainer/rounds.c). */
typedef struct fv_rounds_state {
	int have_base;           /* the initial training's bound is recorded */
	uint64_t bound;          /* train records with key >= bound are new */
	uint32_t done;           /* rounds completed */
	int pending;             /* round done+1 started and did not end: redo it */
	uint64_t pending_to;     /* ... on the records below this key */
} fv_rounds_state;

/* Read it. A missing file is a fresh state; a torn last line (a crash
 * mid-write) counts as never written; an end or start out of sequence is
 * ignored, so nothing is counted twice. Returns 0 or an errno with detail. */
int fv_rounds_state_read(const char *rundir, fv_rounds_state *st);

enum fv_rounds_format {
	FV_ROUNDS_TEXT,   /* one line per round */
	FV_ROUNDS_JSONL,  /* one JSON object per line */
	FV_ROUNDS_JSON,   /* one JSON array, no newline */
};

/* Print the rounds of rundir to out (only the last `last` when > 0).
 * Returns how many rounds the run has (0 with no rounds.jsonl). */
int fv_rounds_show(const char *rundir, enum fv_rounds_format fmt, int last, FILE *out);

#endif
