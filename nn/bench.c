/* nn/bench.c — placeholder */
