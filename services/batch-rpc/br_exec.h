/*
 * br_exec.h - batch-rpc's work timer: any replica works any due job.
 *
 * Each tick (batchrpc.tick) takes due jobs one at a time under the job's
 * lease (jobs.h) and works each for up to batchrpc.slice before the next;
 * what a chunk does, and how crashes and cancels are handled, is described
 * at the top of br_exec.c. Jobs are never held in memory between ticks:
 * everything a worker needs is in Redis, so a job moves between replicas
 * freely.
 *
 * Thread safety: br_exec_tick runs on the skeleton's timer thread; it
 * starts up to max_concurrent_requests threads of its own for the real-time
 * checks of one chunk and joins them before it returns.
 */
#ifndef BR_EXEC_H
#define BR_EXEC_H

/* br_exec_tick - the timer callback (arg unused) */
void br_exec_tick(void *arg);

#endif
