int fv_bench_augment(int argc, char **argv); int fv_bench_augment(int argc, char **argv){(void)argc;(void)argv;return 0;}
