/*
 * cron_yaml.h - a YAML document with line numbers (libyaml's document API).
 *
 * member-cron's own files (schedules, model) need errors that name a line,
 * which the flattened rte_config cannot give, and must not be overridable
 * by RTE_* variables. This wraps yaml_document_t with lookups that return
 * node pointers, scalars as C strings and 1-based line numbers.
 *
 * Errors: cron_yaml_load names the file, line and libyaml's reason.
 * Thread safety: a loaded document is read-only; any thread.
 */
#ifndef CRON_YAML_H
#define CRON_YAML_H

#include <stddef.h>
#include <yaml.h>

typedef struct cron_yaml {
    yaml_document_t doc;
    int loaded;
} cron_yaml;

/* cron_yaml_load - parse path; 0, or -1 with err (the file, line, reason) */
int cron_yaml_load(cron_yaml *y, const char *path, char *err, size_t errlen);

/* cron_yaml_free - release the document */
void cron_yaml_free(cron_yaml *y);

/* cron_yaml_root - the root node, or NULL for an empty file; borrowed */
yaml_node_t *cron_yaml_root(cron_yaml *y);

/* cron_yaml_get - value of key in mapping node, or NULL (also when n is no mapping) */
yaml_node_t *cron_yaml_get(cron_yaml *y, yaml_node_t *map, const char *key);

/* cron_yaml_str - a scalar's text (NUL-terminated by libyaml), or NULL if n is no scalar */
const char *cron_yaml_str(yaml_node_t *n);

/* cron_yaml_line - 1-based line where n starts */
int cron_yaml_line(yaml_node_t *n);

#endif
