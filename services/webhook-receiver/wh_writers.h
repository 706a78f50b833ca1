/*
 * wh_writers.h - cache writes of one consumed message, spread over a small
 * pool of threads.
 *
 * rte_cache_put is one round trip (a compare-and-set script) per entry; one
 * thread doing 10,000 of them in a row spends most of its time waiting for
 * replies. The consumer thread therefore hands the entries of a message to
 * wh.writers threads (each with its own Redis connection) and works along
 * with them; entries are claimed in chunks from a shared counter, and the
 * call returns when all are written or the first Redis error stopped them.
 * Order between entries does not matter: each has its own key.
 *
 * Thread safety: wh_writers_put may be called from several consumer
 * threads at once; one at a time gets the pool's help (the others write
 * alone rather than wait). The pool's state is guarded by its mutex.
 */
#ifndef WH_WRITERS_H
#define WH_WRITERS_H

#include <stddef.h>

#include "rte/cache_entry.h"

/* One result to cache. Strings are borrowed from the message. */
typedef struct wh_item {
    const char *id;  /* check id (submitterTransactionIdentifier) */
    const char *key; /* the cache key, when known (polled items); else from member + partner */
    const char *member;
    const char *partner;
    const char *fail; /* reason it is not cached (payer_error, ...), or NULL */
    rte_cache_entry entry;
    int rc; /* after wh_writers_put: 1 written, 0 a newer entry was kept */
} wh_item;

/* wh_writers_start - start n writer threads (0 = the consumer writes alone); init thread */
int wh_writers_start(int n, char *err, size_t errlen);

/* wh_writers_stop - join the writers; shutdown thread (consumers stopped) */
void wh_writers_stop(void);

/*
 * wh_writers_put - write every item without fail; 0, or -1 + err (the
 * first Redis error; some items may be written, which is harmless: writes
 * are idempotent). Consumer threads.
 */
int wh_writers_put(wh_item *items, int n, char *err, size_t errlen);

#endif
