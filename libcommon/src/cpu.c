/*
 * cpu.c - per-CPU sharding (contract in cpu.h).
 */
#include "rte/cpu.h"

#include <sched.h>
#include <unistd.h>

/* rte_cpu_shards - any thread */
int rte_cpu_shards(int max)
{
    long n = sysconf(_SC_NPROCESSORS_CONF);

    if (n < 1)
        return 1;
    return n > max ? max : (int)n;
}

/* rte_cpu_shard - any thread */
int rte_cpu_shard(int n)
{
    int cpu = sched_getcpu();

    return cpu > 0 && n > 0 ? cpu % n : 0;
}
