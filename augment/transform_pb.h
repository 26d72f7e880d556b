/* augment/transform_pb.h — fv_aug_params <-> fovea.Transform (the wire). */
#ifndef FV_TRANSFORM_PB_H
#define FV_TRANSFORM_PB_H

#include "augment/transform.h"
#include "fovea.pb-c.h"

/* Fill p from a received Transform. Returns 0, or FV_E_PROTO with a reason
 * when a field is out of range (p is then zeroed or partial: do not use). */
int fv_aug_params_from_pb(fv_aug_params *p, const Fovea__Transform *t);

/* Fill t from p for sending. mean_buf/std_buf (3 floats each) back t's
 * repeated fields and must outlive t; t borrows them, nothing to free. */
void fv_aug_params_to_pb(const fv_aug_params *p, Fovea__Transform *t, float *mean_buf,
			 float *std_buf);

#endif
