int fv_bench_ingest(int argc, char **argv); int fv_bench_ingest(int argc, char **argv) { (void)argc; (void)argv; return 1; }
