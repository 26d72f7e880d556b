/* evaluator/daemon.h — the three faces of fovea-evaluator, each a main():
 * the daemon (daemon.c), `eval` (oneshot.c) and `explain` (explain.c). */
#ifndef FV_EVALUATOR_DAEMON_H
#define FV_EVALUATOR_DAEMON_H

int fv_evaluator_daemon(int argc, char **argv);
int fv_evaluator_eval(int argc, char **argv);
int fv_evaluator_explain(int argc, char **argv);

#endif
