/* Checkpoints as safetensors files (safetensors.h): the whole parameter store (weights and
 * optimiser state) saved through a temporary file + fsync + rename, the JSON header padded
 * with spaces to a multiple of 8, and loaded only after the entire file has been validated
 * against the store, so a bad file leaves every parameter as it was. */
#include "io/safetensors.h"
#include "util/atomic.h"
#include "util/file.h"

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ---- saving */

static const char *st_dtype(jg_dtype t) { return t == JG_F64 ? "F64" : "F32"; }

/* Writes a JSON string literal (names are user text: escape quotes, backslashes, controls). */
static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* The header JSON into a memory stream, so its length is known before writing it. */
static char *build_header(jg_graph *g, size_t *len)
{
    char *buf = NULL;
    FILE *m = open_memstream(&buf, len);
    if (!m)
        return NULL;
    fputs("{\"__metadata__\":{\"format\":\"pt\",\"writer\":\"jitgrad\"}", m);
    uint64_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        jg_node *n = g->params[i].node;
        uint64_t bytes = (uint64_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
        fputc(',', m);
        put_json_str(m, n->name);
        fprintf(m, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(n->dtype));
        for (int d = 0; d < n->shape.ndim; d++)
            fprintf(m, "%s%lld", d ? "," : "", (long long)n->shape.dim[d]);
        fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + bytes));
        off += bytes;
    }
    fputc('}', m);
    /* Pad to a multiple of 8 so the data that follows is 8-byte aligned, as the
     * reference writer does. */
    long pos = ftell(m);
    while (pos >= 0 && (8 + pos) % 8 != 0) {
        fputc(' ', m);
        pos++;
    }
    if (fclose(m) != 0 || pos < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Whether s is valid UTF-8 (what JSON text must be): no stray continuation bytes, overlong
 * forms, surrogates or code points past U+10FFFF. */
static bool utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p, n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                                         : (c & 0xF8) == 0xF0 ? 3 : 4;
        if (n == 4 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4))
            return false;
        unsigned cp = n ? c & (0x3F >> n) : c;
        for (unsigned k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}

JG_API jg_status jg_checkpoint_save(jg_graph *g, const char *path)
{
    if (!g)
        return JG_ERR_ARG;
    if (!path) {
        graph_note(g, "jg_checkpoint_save: path is NULL");
        return JG_ERR_ARG;
    }
    /* Nothing is written that jg_checkpoint_load would refuse */
    for (int i = 0; i < g->n_params; i++) {
        const char *name = g->params[i].node->name;
        size_t len = strlen(name);
        if (len >= ST_MAX_NAME) {
            graph_note(g, "jg_checkpoint_save: %s: parameter '%.40s...' has a name of %zu "
                       "bytes; a checkpoint holds names of at most %d", path, name, len,
                       ST_MAX_NAME - 1);
            return JG_ERR_ARG;
        }
        if (!utf8_valid(name) || !strcmp(name, "__metadata__")) {
            graph_note(g, "jg_checkpoint_save: %s: parameter name '%.40s' cannot be a "
                       "safetensors name (%s)", path, name,
                       utf8_valid(name) ? "it is reserved" : "not valid UTF-8");
            return JG_ERR_ARG;
        }
    }
    size_t hlen;
    char *header = build_header(g, &hlen);
    if (!header) {
        graph_note(g, "jg_checkpoint_save: %s: out of memory", path);
        return JG_ERR_NOMEM;
    }
    if (hlen > ST_MAX_HEADER) {
        free(header);
        graph_note(g, "jg_checkpoint_save: %s: the header would be %zu bytes, more than the "
                   "%llu a checkpoint may have", path, hlen, (unsigned long long)ST_MAX_HEADER);
        return JG_ERR_ARG;
    }
    char err[400];
    atomic_file at;
    if (!atomic_file_begin(&at, path, err, sizeof err)) {
        free(header);
        graph_note(g, "jg_checkpoint_save: %s", err);
        return JG_ERR_IO;
    }
    at.remove_stale = true; /* what killed saves left: each the checkpoint's size */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    fwrite(len8, 1, 8, at.f);
    fwrite(header, 1, hlen, at.f);
    free(header);
    for (int i = 0; i < g->n_params; i++) {
        jg_node *n = g->params[i].node;
        size_t numel = (size_t)jg_shape_numel(n->shape), es = jg_dtype_size(n->dtype);
        if (!st_host_big_endian()) {
            fwrite(g->params[i].data, es, numel, at.f);
        } else {
            unsigned char tmp[8];
            for (size_t k = 0; k < numel; k++) {
                st_copy_le(tmp, (const unsigned char *)g->params[i].data + k * es, 1, es);
                fwrite(tmp, 1, es, at.f);
            }
        }
    }
    if (!atomic_file_commit(&at, err, sizeof err)) {
        graph_note(g, "jg_checkpoint_save: %s", err);
        return JG_ERR_IO;
    }
    return JG_OK;
}

/* ---- loading */

/* The file against the store: names both ways, dtypes, shapes, byte counts. */
static jg_status check_against(jg_graph *g, const st_file *f, char *why, size_t why_size)
{
    char s1[160], s2[160];
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->e[i];
        graph_param *p = store_find(g, e->name);
        if (!p) {
            snprintf(why, why_size, "tensor '%s' is not a parameter of the graph", e->name);
            return JG_ERR_ARG;
        }
        jg_node *n = p->node;
        if (strcmp(e->dtype, st_dtype(n->dtype)) != 0) {
            snprintf(why, why_size, "tensor '%s': dtype %s in the file, %s in the graph",
                     e->name, e->dtype, st_dtype(n->dtype));
            return JG_ERR_DTYPE;
        }
        if (e->shape.ndim > JG_MAX_DIMS) {
            snprintf(why, why_size, "tensor '%s': more than %d dimensions in the file, %s in "
                     "the graph", e->name, JG_MAX_DIMS, shape_str(n->shape, s2, sizeof s2));
            return JG_ERR_SHAPE;
        }
        bool same = e->shape.ndim == n->shape.ndim;
        for (int d = 0; same && d < e->shape.ndim; d++)
            same = e->shape.dim[d] == n->shape.dim[d];
        if (!same) {
            /* shape_str expects valid dimensions; print the file's by hand. */
            int k = snprintf(s1, sizeof s1, "[");
            for (int d = 0; d < e->shape.ndim && k < (int)sizeof s1 - 24; d++)
                k += snprintf(s1 + k, sizeof s1 - (size_t)k, "%s%lld", d ? "," : "",
                              (long long)e->shape.dim[d]);
            snprintf(s1 + k, sizeof s1 - (size_t)k, "]");
            snprintf(why, why_size, "tensor '%s': shape %s in the file, %s in the graph",
                     e->name, s1, shape_str(n->shape, s2, sizeof s2));
            return JG_ERR_SHAPE;
        }
        uint64_t want = (uint64_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
        if (e->end - e->begin != want) {
            snprintf(why, why_size, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes, "
                     "its shape and dtype need %llu", e->name, (unsigned long long)e->begin,
                     (unsigned long long)e->end, (unsigned long long)(e->end - e->begin),
                     (unsigned long long)want);
            return JG_ERR_IO;
        }
    }
    for (int i = 0; i < g->n_params; i++) {
        const char *name = g->params[i].node->name;
        bool found = false;
        for (int k = 0; k < f->n && !found; k++)
            found = !strcmp(f->e[k].name, name);
        if (!found) {
            snprintf(why, why_size, "parameter '%s' of the graph is missing from the file", name);
            return JG_ERR_ARG;
        }
    }
    return JG_OK;
}

JG_API jg_status jg_checkpoint_load(jg_graph *g, const char *path)
{
    if (!g)
        return JG_ERR_ARG;
    if (!path) {
        graph_note(g, "jg_checkpoint_load: path is NULL");
        return JG_ERR_ARG;
    }
    char why[400] = "";
    unsigned char *buf = NULL;
    size_t size = 0;
    st_file f = { 0 };
    uint64_t data_start = 0;
    jg_status st = st_read(path, &buf, &size, &f, &data_start, why, sizeof why);
    if (st == JG_OK)
        st = check_against(g, &f, why, sizeof why);
    if (st == JG_OK) {
        for (int i = 0; i < f.n; i++) {
            graph_param *p = store_find(g, f.e[i].name);
            st_copy_le(p->data, buf + data_start + f.e[i].begin,
                       (size_t)jg_shape_numel(p->node->shape), jg_dtype_size(p->node->dtype));
            p->init = JG_INIT_DATA;
        }
    } else {
        graph_note(g, "jg_checkpoint_load: %s: %s", path, why);
    }
    st_free(&f);
    free(buf);
    return st;
}
