/*
 * fuzz_http_req.h - an rte_http_req made from text, for the targets that
 * fuzz what handlers read from a request (query parameters, headers, the
 * path tail).
 *
 * rte_http_req is opaque and only h2o's accept path makes one, so this
 * header compiles libcommon/src/http_server.c into the target itself (the
 * archive's copy is then never linked) and fills a request in the form
 * rte_http_defer leaves it: method, path and query as text, copies of the
 * headers and the body. rte_http_req_query, rte_http_req_header,
 * rte_http_req_body and rte_http_req_tail read that form exactly as they
 * read a deferred request in a running server; nothing here answers it.
 *
 * Include it in one target only (it defines every http_server function).
 */
#ifndef FUZZ_HTTP_REQ_H
#define FUZZ_HTTP_REQ_H

#include "../../libcommon/src/http_server.c"

#define FUZZ_HTTP_MAX_HDRS 8

typedef struct fuzz_http_req {
    rte_http_req *req;
    struct hdr_copy hdrs[FUZZ_HTTP_MAX_HDRS];
} fuzz_http_req;

/*
 * fuzz_http_req_init - a GET of path?query (query without '?', NULL =
 * none) with tail = the part after prefix; header names and values are
 * borrowed (NULL value = header absent)
 */
static inline void fuzz_http_req_init(fuzz_http_req *f, const char *path, const char *prefix,
                                      const char *query, const char *const *names,
                                      char *const *values, size_t nhdrs)
{
    size_t plen = strlen(path), qlen = query ? strlen(query) : 0;
    rte_http_req *r = calloc(1, sizeof *r + 4 + plen + qlen + 3);
    if (r == NULL)
        abort();
    char *p = r->text;
    r->method = p;
    p = put(p, "GET", 3);
    r->path = p;
    r->path_len = plen;
    p = put(p, path, plen);
    r->query = p;
    put(p, query ? query : "", qlen);
    size_t pre = strlen(prefix);
    r->tail = strncmp(r->path, prefix, pre) == 0 ? r->path + pre : "";
    r->deferred = 1;
    r->body = "";
    r->body_len = 0;
    size_t n = 0;
    for (size_t i = 0; i < nhdrs && n < FUZZ_HTTP_MAX_HDRS; i++) {
        if (values[i] == NULL)
            continue;
        f->hdrs[n].name = (char *)names[i];
        f->hdrs[n].value = values[i];
        n++;
    }
    r->hdrs = f->hdrs;
    r->nhdrs = n;
    f->req = r;
}

/* fuzz_http_req_fini - release what init made */
static inline void fuzz_http_req_fini(fuzz_http_req *f)
{
    free(f->req);
    f->req = NULL;
}

#endif
