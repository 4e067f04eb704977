// Whether the machine's two cores slow each other down on memory: each thread fills its own
// 1 GiB array, then either streams over it four times (mode 0) or reads 32M words of it at
// random (mode 1), and prints its time. Run with one thread, then two; equal times mean a
// memory-bound loop scales with the cores. Mode 2 touches no memory: eight independent
// xorshift chains, bound by the core's throughput, which two hyperthreads of one core would
// share (equal times: the two vCPUs are separate cores). See docs/benchmarks.md ("Rows prefetched ahead").
//
//   gcc -O2 -pthread benches/scripts/memory-scaling.c -o /tmp/memory-scaling
//   /tmp/memory-scaling 0 1; /tmp/memory-scaling 0 2; /tmp/memory-scaling 1 1; /tmp/memory-scaling 1 2
//   /tmp/memory-scaling 2 1; /tmp/memory-scaling 2 2
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORDS (128UL * 1024 * 1024)

static int mode;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *compute(void) {
    uint64_t x[8];
    for (int k = 0; k < 8; k++) x[k] = k + 1;
    double start = now();
    for (long i = 0; i < 300000000L; i++)
        for (int k = 0; k < 8; k++) {
            x[k] ^= x[k] << 13;
            x[k] ^= x[k] >> 7;
            x[k] ^= x[k] << 17;
        }
    uint64_t sum = 0;
    for (int k = 0; k < 8; k++) sum += x[k];
    printf("compute: %.3f s (%lu)\n", now() - start, (unsigned long)(sum & 1));
    return NULL;
}

static void *run(void *unused) {
    (void)unused;
    if (mode == 2) return compute();
    uint64_t *words = malloc(WORDS * sizeof(uint64_t));
    if (!words) {
        perror("malloc");
        exit(1);
    }
    memset(words, 1, WORDS * sizeof(uint64_t));
    double start = now();
    uint64_t sum = 0;
    if (mode == 0) {
        for (int round = 0; round < 4; round++)
            for (size_t i = 0; i < WORDS; i++) sum += words[i];
    } else {
        uint64_t x = 88172645463325252ULL;  // xorshift64
        for (size_t i = 0; i < WORDS / 4; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sum += words[x % WORDS];
        }
    }
    printf("%s: %.3f s (%lu)\n", mode == 0 ? "stream" : "random", now() - start,
           (unsigned long)(sum & 1));
    free(words);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: memory-scaling MODE(0 stream, 1 random, 2 compute) THREADS(1-4)\n");
        return 2;
    }
    mode = atoi(argv[1]);
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 4) threads = 1;
    pthread_t t[4];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    return 0;
}
