/* Unit tests for lib/fv_config: defaults, files, command line, errors. */
#include "fv_test.h"
#include "fv_config.h"
#include "fv_error.h"

#include <stdlib.h>
#include <string.h>

struct cfg { long epochs; double lr; int nesterov; char *db; int sched; };

static const fv_cfg_opt table[] = {
	{ "epochs", FV_CFG_INT, offsetof(struct cfg, epochs), "10", 1, 1000, NULL, "epochs" },
	{ "lr", FV_CFG_DOUBLE, offsetof(struct cfg, lr), "0.1", 0, 10, NULL, "base lr" },
	{ "nesterov", FV_CFG_BOOL, offsetof(struct cfg, nesterov), "false", 0, 0, NULL, "nesterov" },
	{ "db", FV_CFG_STR, offsetof(struct cfg, db), NULL, 0, 0, NULL, "dataset" },
	{ "schedule", FV_CFG_ENUM, offsetof(struct cfg, sched), "cosine", 0, 0, "constant|step|cosine", "lr schedule" },
	FV_CFG_END
};

static const char *write_file(const char *name, const char *text)
{
	static char path[600];
	snprintf(path, sizeof path, "%s/%s", fv_test_tmpdir(), name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

FV_TEST(config_defaults)
{
	struct cfg c;
	FV_CHECK_OK(fv_cfg_defaults(table, &c));
	FV_CHECK_EQ(c.epochs, 10);
	FV_CHECK_NEAR(c.lr, 0.1, 0);
	FV_CHECK_EQ(c.nesterov, 0);
	FV_CHECK(c.db == NULL);
	FV_CHECK_EQ(c.sched, 2);
}

/* cfg is usually a stack struct nobody zeroed: the defaults must not free
 * what its string fields happen to hold (glibc 2.39's stack left a pointer
 * there, and every fovea-ingest died in free() before its first line). */
FV_TEST(config_defaults_over_garbage)
{
	static const fv_cfg_opt strs[] = {
		{ "db", FV_CFG_STR, offsetof(struct cfg, db), "/data/d", 0, 0, NULL, "dataset" },
		{ "epochs", FV_CFG_INT, offsetof(struct cfg, epochs), "10", 1, 1000, NULL, "epochs" },
		FV_CFG_END
	};
	struct cfg c;
	memset(&c, 0xa5, sizeof c);
	FV_CHECK_OK(fv_cfg_defaults(strs, &c));
	FV_CHECK(c.db && !strcmp(c.db, "/data/d"));
	FV_CHECK_EQ(c.epochs, 10);
	fv_cfg_free(strs, &c);
	memset(&c, 0xa5, sizeof c);
	FV_CHECK_OK(fv_cfg_defaults(table, &c));
	FV_CHECK(c.db == NULL);
}

FV_TEST(config_file_and_args_override)
{
	struct cfg c;
	const char *p = write_file("a.conf", "# comment\nepochs = 20\n\nlr=0.5\ndb = \"/data/x\"\nschedule = step\n");
	char *argv[] = { "prog", "pos1", "-c", (char *)p, "--epochs", "30", "--nesterov", "pos2", "--lr=0.25", NULL };
	int npos;
	fv_cfg_defaults(table, &c);
	FV_CHECK_OK(fv_cfg_parse_args(table, &c, 9, argv, &npos, NULL));
	FV_CHECK_EQ(c.epochs, 30);
	FV_CHECK_NEAR(c.lr, 0.25, 0);
	FV_CHECK_EQ(c.nesterov, 1);
	FV_CHECK(c.db && !strcmp(c.db, "/data/x"));
	FV_CHECK_EQ(c.sched, 1);
	FV_CHECK_EQ(npos, 2);
	FV_CHECK(!strcmp(argv[1], "pos1") && !strcmp(argv[2], "pos2"));
	fv_cfg_free(table, &c);
}

FV_TEST(config_errors_name_file_and_line)
{
	struct cfg c;
	fv_cfg_defaults(table, &c);
	const char *p = write_file("b.conf", "epochs = 5\nbogus = 1\n");
	int rc = fv_cfg_load(table, &c, p);
	FV_CHECK_EQ(rc, FV_E_CONFIG);
	FV_CHECK(strstr(fv_err_msg(rc), "b.conf:2") && strstr(fv_err_msg(rc), "bogus"));
	p = write_file("c.conf", "epochs = 5000\n");
	rc = fv_cfg_load(table, &c, p);
	FV_CHECK(rc == FV_E_CONFIG && strstr(fv_err_msg(rc), "c.conf:1"));
	p = write_file("d.conf", "lr = fast\n");
	FV_CHECK_EQ(fv_cfg_load(table, &c, p), FV_E_CONFIG);
	p = write_file("e.conf", "schedule = linear\n");
	FV_CHECK_EQ(fv_cfg_load(table, &c, p), FV_E_CONFIG);
	char *argv[] = { "prog", "--nope", "1", NULL };
	int npos;
	rc = fv_cfg_parse_args(table, &c, 3, argv, &npos, NULL);
	FV_CHECK(rc == FV_E_CONFIG && strstr(fv_err_msg(rc), "--nope"));
	char *argv2[] = { "prog", "--epochs", NULL };
	FV_CHECK_EQ(fv_cfg_parse_args(table, &c, 2, argv2, &npos, NULL), FV_E_CONFIG);
	fv_cfg_free(table, &c);
}

FV_TEST(config_write_roundtrip)
{
	struct cfg a, b;
	fv_cfg_defaults(table, &a);
	fv_cfg_set(table, &a, "db", "/x y", "test");
	fv_cfg_set(table, &a, "lr", "0.123456789", "test");
	char path[600];
	snprintf(path, sizeof path, "%s/out.conf", fv_test_tmpdir());
	FILE *f = fopen(path, "w");
	fv_cfg_write(table, &a, f);
	fclose(f);
	fv_cfg_defaults(table, &b);
	FV_CHECK_OK(fv_cfg_load(table, &b, path));
	FV_CHECK(a.lr == b.lr && a.epochs == b.epochs && !strcmp(a.db, b.db) && a.sched == b.sched);
	fv_cfg_free(table, &a);
	fv_cfg_free(table, &b);
}
