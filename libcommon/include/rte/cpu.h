/*
 * cpu.h - per-CPU sharding: state split into one shard per CPU so threads
 * on different CPUs never write the same cache lines (metric cells, the
 * gateway's access-event tables).
 *
 * A thread's shard is the CPU it runs on now (sched_getcpu, a read of the
 * rseq area), modulo the shard count. A thread may move between CPUs at
 * any moment, so a shard still needs its own synchronisation (atomics or
 * a mutex); sharding only makes that synchronisation uncontended.
 *
 * Thread safety: any thread.
 */
#ifndef RTE_CPU_H
#define RTE_CPU_H

/* rte_cpu_shards - one per configured CPU, at least 1 and at most max */
int rte_cpu_shards(int max);

/* rte_cpu_shard - the calling thread's shard among n (0 when the CPU is unknown) */
int rte_cpu_shard(int n);

#endif
