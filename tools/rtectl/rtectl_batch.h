/*
 * rtectl_batch.h - `rtectl batch submit|status|list|watch|cancel`, the
 * client of batch-rpc's BatchEligibilityService (rtectl_batch.c).
 */
#ifndef RTECTL_BATCH_H
#define RTECTL_BATCH_H

/* rtectl_batch_is_rpc - 1 when sub is one of the batch-rpc subcommands */
int rtectl_batch_is_rpc(const char *sub);

/* rtectl_batch_rpc - run argv (starting at the subcommand); the exit code */
int rtectl_batch_rpc(int argc, char **argv);

#endif
