/*
 * cron_yaml.c - libyaml document loading and lookups with line numbers.
 */
#include "cron_yaml.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* cron_yaml_load - any thread; reads the file */
int cron_yaml_load(cron_yaml *y, const char *path, char *err, size_t errlen)
{
    yaml_parser_t p;
    FILE *f = fopen(path, "rb");

    memset(y, 0, sizeof *y);
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &y->doc);
    if (!ok)
        snprintf(err, errlen, "%s: line %lu: %s", path, (unsigned long)p.problem_mark.line + 1,
                 p.problem ? p.problem : "YAML syntax error");
    yaml_parser_delete(&p);
    fclose(f);
    y->loaded = ok;
    return ok ? 0 : -1;
}

/* cron_yaml_free - the owner */
void cron_yaml_free(cron_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = 0;
}

/* cron_yaml_root - any thread */
yaml_node_t *cron_yaml_root(cron_yaml *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

/* cron_yaml_get - any thread */
yaml_node_t *cron_yaml_get(cron_yaml *y, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(&y->doc, pr->value);
    }
    return NULL;
}

/* cron_yaml_str - any thread */
const char *cron_yaml_str(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* cron_yaml_line - any thread */
int cron_yaml_line(yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}
