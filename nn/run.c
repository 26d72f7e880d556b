/* nn/run.c — compiling a built network for a batch size and backend, and
 * running forward / loss / backward steps with no allocation in the loop. */
#include <stdlib.h>

#include "fv_error.h"
#include "nn/graph.h"

void fv_net_release(fv_net *net)
{
	(void)net;
}

int fv_net_compile(fv_net *net, const fv_net_opts *opts)
{
	(void)net, (void)opts;
	return fv_err_set(FV_E_UNSUPPORTED, "compile: not yet");
}
