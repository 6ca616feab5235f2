/* CSV metrics logs: one header line, then one line of numbers per call, appended so that a
 * resumed run continues the same file. Each row is flushed at once so a crash loses at most
 * the row being written; close fsyncs.
 */
#include "jitgrad.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct jg_csv {
    FILE *f;
    int n;
    bool failed;   /* a write failed; reported by jg_csv_close */
};

/* RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
static void put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

JG_API jg_csv *jg_csv_open(const char *path, const char *const *columns, int n)
{
    if (!path || !columns || n < 1) {
        errno = EINVAL;
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!columns[i]) {
            errno = EINVAL;
            return NULL;
        }
    jg_csv *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->f = fopen(path, "a");
    if (!c->f) {
        int e = errno;
        free(c);
        errno = e;
        return NULL;
    }
    /* In append mode the position is unspecified until the first write: seek to find out
     * whether the file is empty. */
    if (fseek(c->f, 0, SEEK_END) == 0 && ftell(c->f) == 0) {
        for (int i = 0; i < n; i++) {
            if (i)
                fputc(',', c->f);
            put_field(c->f, columns[i]);
        }
        fputc('\n', c->f);
        if (fflush(c->f) != 0) {
            int e = errno;
            fclose(c->f);
            free(c);
            errno = e;
            return NULL;
        }
    }
    return c;
}

JG_API jg_status jg_csv_row(jg_csv *c, const double *values)
{
    if (!c || !values)
        return JG_ERR_ARG;
    for (int i = 0; i < c->n; i++)
        fprintf(c->f, "%s%.10g", i ? "," : "", values[i]);
    fputc('\n', c->f);
    if (fflush(c->f) != 0 || ferror(c->f)) {
        c->failed = true;
        return JG_ERR_IO;
    }
    return JG_OK;
}

JG_API jg_status jg_csv_close(jg_csv *c)
{
    if (!c)
        return JG_OK;
    bool ok = !c->failed && fflush(c->f) == 0 && !ferror(c->f);
    ok = fsync(fileno(c->f)) == 0 && ok;
    ok = fclose(c->f) == 0 && ok;
    free(c);
    return ok ? JG_OK : JG_ERR_IO;
}
