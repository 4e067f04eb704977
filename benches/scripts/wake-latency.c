// How long waking a parked thread takes on this machine: two threads hand a futex back and
// forth 20,000 times and the average round trip (two wake-ups) is printed. On a virtual
// machine whose idle vCPU halts, this is tens of microseconds; see docs/benchmarks.md.
//
//   gcc -O2 -pthread benches/scripts/wake-latency.c -o /tmp/wake-latency && /tmp/wake-latency
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 20000

static atomic_int flag = 0;

static void wait_while(atomic_int *a, int v) {
    while (atomic_load(a) == v) syscall(SYS_futex, a, FUTEX_WAIT_PRIVATE, v, 0, 0, 0);
}

static void wake(atomic_int *a) { syscall(SYS_futex, a, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0); }

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *other(void *unused) {
    (void)unused;
    for (int i = 0; i < ROUNDS; i++) {
        wait_while(&flag, 0);
        atomic_store(&flag, 0);
        wake(&flag);
    }
    return 0;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, 0, other, 0);
    double start = now_us();
    for (int i = 0; i < ROUNDS; i++) {
        atomic_store(&flag, 1);
        wake(&flag);
        wait_while(&flag, 1);
    }
    printf("futex round trip %.1f us\n", (now_us() - start) / ROUNDS);
    pthread_join(t, 0);
    return 0;
}
