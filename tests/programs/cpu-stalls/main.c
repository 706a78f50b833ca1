/*
 * cpu-stalls - how often this machine takes a CPU away from a running thread.
 *
 * A latency figure below a millisecond means little on a machine whose CPUs
 * vanish for milliseconds (a shared VM's hypervisor, other tenants, kernel
 * work). This runs one thread pinned to each online CPU that does nothing
 * but read CLOCK_MONOTONIC for the given time; any gap between two reads
 * longer than 100 us is time the thread was not running. Run it on an
 * otherwise idle machine: the benchmark drivers print it next to their
 * latency figures as the floor no server can go under.
 *
 * Usage: cpu-stalls [seconds=2]. Prints one line per CPU:
 *   cpu N: stalls/s >100us X >500us Y >2ms Z longest Wus
 * and exits 0 (1 on bad arguments or if a thread cannot be started).
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256

struct probe {
    int cpu;
    double secs;
    long over100, over500, over2000;
    int64_t longest_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *spin(void *arg)
{
    struct probe *p = arg;
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    int64_t start = now_ns(), prev = start, end = start + (int64_t)(p->secs * 1e9);
    for (int64_t t = start; t < end; prev = t) {
        t = now_ns();
        int64_t gap = t - prev;
        p->over100 += gap > 100000;
        p->over500 += gap > 500000;
        p->over2000 += gap > 2000000;
        if (gap > p->longest_ns)
            p->longest_ns = gap;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 2;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct probe probes[MAX_CPUS];
    pthread_t threads[MAX_CPUS];

    if (!(secs > 0 && secs <= 600) || ncpu < 1) {
        fprintf(stderr, "usage: cpu-stalls [seconds=2] (0 < seconds <= 600)\n");
        return 1;
    }
    if (ncpu > MAX_CPUS)
        ncpu = MAX_CPUS;
    for (int i = 0; i < ncpu; i++) {
        probes[i] = (struct probe){.cpu = i, .secs = secs};
        if (pthread_create(&threads[i], NULL, spin, &probes[i]) != 0) {
            fprintf(stderr, "cpu-stalls: cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < ncpu; i++) {
        struct probe *p = &probes[i];
        pthread_join(threads[i], NULL);
        printf("cpu %d: stalls/s >100us %.1f >500us %.1f >2ms %.1f longest %lldus\n", p->cpu,
               (double)p->over100 / secs, (double)p->over500 / secs, (double)p->over2000 / secs,
               (long long)(p->longest_ns / 1000));
    }
    return 0;
}
