/* test_serve.c — fovea-serve's pieces that need no model: JSON answers
 * (escaping, shape), the metrics counters and Prometheus text, and the model
 * registry's behaviour before any export exists or on a damaged file. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fv_error.h"
#include "fv_test.h"
#include "serve/metrics.h"
#include "serve/model.h"

FV_TEST(json_answer_shape)
{
	fv_srv_pred p[2] = { { 9, 0.75f, "Ankle \"boot\"" }, { 7, 0.25f, "Sneaker" } };
	char buf[512];
	fv_srv_json(buf, sizeof buf, "v3/model.fovea", 3, p, 2);
	FV_CHECK_MSG(!strcmp(buf, "{\"model\":\"v3/model.fovea\",\"version\":3,\"top5\":["
				  "{\"label\":9,\"name\":\"Ankle \\\"boot\\\"\",\"score\":0.750000},"
				  "{\"label\":7,\"name\":\"Sneaker\",\"score\":0.250000}]}"),
		     "got %s", buf);
	char tiny[16];
	size_t n = fv_srv_json(tiny, sizeof tiny, "m", 1, p, 2);
	FV_CHECK(n < sizeof tiny && strlen(tiny) == n);
}

FV_TEST(metrics_text)
{
	fv_srv_metrics m;
	char buf[8192];
	fv_srv_metrics_init(&m);
	fv_srv_metrics_add(&m, FV_SRV_HTTP, 200, 0.0004);
	fv_srv_metrics_add(&m, FV_SRV_HTTP, 200, 0.03);
	fv_srv_metrics_add(&m, FV_SRV_HTTP, 413, 0);
	fv_srv_metrics_add(&m, FV_SRV_ZMQ, 400, 20);
	FV_CHECK_EQ(fv_srv_metrics_total(&m), 4);
	fv_srv_metrics_text(&m, 7, 2, buf, sizeof buf);
	FV_CHECK(strstr(buf, "fovea_serve_requests_total{transport=\"http\",status=\"200\"} 2\n"));
	FV_CHECK(strstr(buf, "fovea_serve_requests_total{transport=\"http\",status=\"413\"} 1\n"));
	FV_CHECK(strstr(buf, "fovea_serve_requests_total{transport=\"zmq\",status=\"400\"} 1\n"));
	/* cumulative buckets: 2 at or under 1 ms, 3 at or under 50 ms, 4 in +Inf */
	FV_CHECK(strstr(buf, "fovea_serve_request_seconds_bucket{le=\"0.001\"} 2\n"));
	FV_CHECK(strstr(buf, "fovea_serve_request_seconds_bucket{le=\"0.05\"} 3\n"));
	FV_CHECK(strstr(buf, "fovea_serve_request_seconds_bucket{le=\"10\"} 3\n"));
	FV_CHECK(strstr(buf, "fovea_serve_request_seconds_bucket{le=\"+Inf\"} 4\n"));
	FV_CHECK(strstr(buf, "fovea_serve_request_seconds_count 4\n"));
	FV_CHECK(strstr(buf, "fovea_serve_model_version 7\n"));
	FV_CHECK(strstr(buf, "fovea_serve_reloads_total 2\n"));
	fv_srv_metrics_fini(&m);
}

FV_TEST(registry_without_model)
{
	fv_srv_models *m = NULL;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/models", fv_test_tmpdir());
	FV_CHECK_OK(fv_srv_models_new(&m, dir, NULL, 0, 1));
	FV_CHECK(fv_srv_models_acquire(m) == NULL);
	FV_CHECK_EQ(fv_srv_models_reload(m, 1, NULL), FV_E_NOTFOUND);
	fv_srv_models_destroy(&m);
	FV_CHECK(m == NULL);
}

FV_TEST(registry_damaged_file_keeps_nothing_loaded)
{
	fv_srv_models *m = NULL;
	char path[4200];
	snprintf(path, sizeof path, "%s/bad.fovea", fv_test_tmpdir());
	FILE *f = fopen(path, "w");
	FV_CHECK(f != NULL);
	fputs("FOVEAMDL this is not a model", f);
	fclose(f);
	FV_CHECK_OK(fv_srv_models_new(&m, NULL, path, 0, 1));
	int changed = 1, rc = fv_srv_models_reload(m, 1, &changed);
	FV_CHECK(rc != 0);
	FV_CHECK_EQ(changed, 0);
	FV_CHECK(fv_srv_models_acquire(m) == NULL);
	unsigned reloads = 9, version = 9;
	fv_srv_models_stats(m, &reloads, &version);
	FV_CHECK_EQ(reloads, 0);
	FV_CHECK_EQ(version, 0);
	fv_srv_models_destroy(&m);
}
