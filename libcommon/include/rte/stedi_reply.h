/*
 * stedi_reply.h - the one reader of Stedi eligibility answers.
 *
 * Stedi answers an eligibility question in one shape wherever it comes
 * from: the body of a real-time check (POST .../eligibility/v3, HTTP 200,
 * or HTTP 400 with errors[]), and each item of a batch poll page (the same
 * shape plus batchId and submitterTransactionIdentifier). This module reads
 * that shape into a cache entry (cache_entry.h) for the service types that
 * were asked; the Stedi client (stedi.h) uses it for both.
 *
 * What it takes from the answer, in short (docs/stedi.md has the rules,
 * each with the OpenAPI's own words):
 *   errors[] or status "ERROR"  an error entry: the first error's code and
 *                 description, its follow-up action, whether asking again
 *                 can succeed (retry) and who said it (payer or stedi);
 *                 fresh for cache.fresh_error when retry, else for
 *                 cache.fresh_error_final
 *   benefits      per service type asked: status (codes 1-5 active, 6-8
 *                 inactive, on the check date), and co-pay, co-insurance,
 *                 deductible and out-of-pocket amounts split by network
 *   eligible      the first service type asked is active (its own rows, or
 *                 when the payer says nothing about it, those for 30)
 *   dates         planDateInformation plan and eligibility dates, single
 *                 dates and ranges alike
 *   network_status a provider-network statement the payer makes in
 *                 additionalInformation, else unknown
 *   copay_amount  the one in-network co-pay of the first service type asked
 *                 (then one for any network, then one not stated), else null
 * planStatus (deprecated) and inPlanNetworkIndicatorCode as a provider
 * network status are not read.
 *
 * Thread safety: pure functions; any thread.
 */
#ifndef RTE_STEDI_REPLY_H
#define RTE_STEDI_REPLY_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "rte/cache_entry.h"

/* The service types asked: up to RTE_CACHE_SERVICE_TYPES_MAX codes of 1-2 characters. */
typedef struct rte_stedi_asked {
    int n; /* 0 = "30" (health benefit plan coverage), as Stedi defaults */
    char code[RTE_CACHE_SERVICE_TYPES_MAX][3];
} rte_stedi_asked;

/*
 * rte_stedi_asked_parse - "30" or "30,MH" into out (duplicates dropped);
 * NULL or "" = the default. -1 + err when a code is not 1-2 letters or
 * digits or there are too many. Pure.
 */
int rte_stedi_asked_parse(const char *list, rte_stedi_asked *out, char *err, size_t errlen);

/* rte_stedi_asked_format - "30,MH" into out (len >= 16 always fits); pure */
void rte_stedi_asked_format(const rte_stedi_asked *a, char *out, size_t len);

/*
 * rte_stedi_reply_read - read one answer doc (a real-time body or a polled
 * item) for the service types asked (NULL = the default) into an entry with
 * source and cached_at now_ms (the check date is now_ms's UTC day). 0 with
 * out filled (out->is_error for errors[]), or -1 + err when doc is not an
 * eligibility answer at all (neither errors[] nor benefitsInformation[],
 * e.g. Stedi's {message, fieldList} validation error).
 */
int rte_stedi_reply_read(const cJSON *doc, const rte_stedi_asked *asked, const char *source,
                         int64_t now_ms, const rte_cache_freshness *f, rte_cache_entry *out,
                         char *err, size_t errlen);

/*
 * rte_stedi_reply_retry - 1 when asking again later may succeed after an
 * error with AAA/Stedi code and follow-up action (X12 letter or Stedi's
 * name; either may be NULL); 0 when the same request will fail the same
 * way. Pure.
 */
int rte_stedi_reply_retry(const char *code, const char *followup);

#endif
