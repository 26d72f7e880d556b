/* fovea-evaluator — scores checkpoints on the val split.
 *
 *   fovea-evaluator --runs RUNDIR --db DIR [options]   the daemon (-c FILE too)
 *   fovea eval --db DIR --ckpt FILE [--json] [--predictions FILE]
 *   fovea explain --ckpt FILE IMAGE --out heat.png [--class N]
 *
 * The daemon watches run directories and CheckpointReady events, evaluates
 * each new checkpoint once (RUNDIR/eval.jsonl), keeps the champion
 * (RUNDIR/champion, RUNDIR/champion.fvc) and publishes EvalResult/NewBest;
 * see daemon.c. */
#include "evaluator/daemon.h"
#include "fv_log.h"

#include <string.h>

int main(int argc, char **argv)
{
	fv_log_init("fovea-evaluator", FV_LOG_INFO);
	if (argc > 1 && !strcmp(argv[1], "eval"))
		return fv_evaluator_eval(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "explain"))
		return fv_evaluator_explain(argc - 1, argv + 1);
	return fv_evaluator_daemon(argc, argv);
}
