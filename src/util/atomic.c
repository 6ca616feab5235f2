/* Crash-safe file replacement (see atomic.h): temporary file, fsync, rename, directory fsync.
 * mkstemp gives a unique temporary name, so concurrent writers of one target never share a
 * temporary; the last rename wins.
 */
#include "util/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void file_fail(char *err, size_t err_size, const char *path, const char *fmt, ...)
{
    if (!err || err_size == 0)
        return;
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(err, err_size, "%s: %s", path ? path : "(null)", why);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

bool atomic_file_begin(atomic_file *a, const char *path, char *err, size_t err_size)
{
    *a = (atomic_file){ 0 };
    if (!path || !*path) {
        file_fail(err, err_size, path, "empty path");
        return false;
    }
    size_t n = strlen(path);
    a->path = dup_str(path);
    a->tmp = malloc(n + sizeof ".tmp.XXXXXX");
    if (!a->path || !a->tmp) {
        file_fail(err, err_size, path, "out of memory");
        atomic_file_abort(a);
        return false;
    }
    memcpy(a->tmp, path, n);
    memcpy(a->tmp + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        file_fail(err, err_size, path, "cannot create a temporary file: %s", strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        atomic_file_abort(a);
        return false;
    }
    /* mkstemp makes the file private (0600); a saved file is an ordinary one. */
    (void)fchmod(fd, 0644);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        file_fail(err, err_size, path, "fdopen: %s", strerror(errno));
        close(fd);
        atomic_file_abort(a);
        return false;
    }
    return true;
}

void atomic_file_abort(atomic_file *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    *a = (atomic_file){ 0 };
}

/* The directory entry of the rename must reach the disk too, or a crash can bring back the
 * old file (or no file) although the data was synced. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash) {
        dir = dup_str(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno; /* EINVAL: fs without dir sync */
    close(fd);
    return rc;
}

bool atomic_file_commit(atomic_file *a, char *err, size_t err_size)
{
    if (!a->f) {
        file_fail(err, err_size, a->path, "no temporary file to commit");
        atomic_file_abort(a);
        return false;
    }
    if (fflush(a->f) != 0 || ferror(a->f)) {
        file_fail(err, err_size, a->path, "write failed: %s", strerror(errno));
        atomic_file_abort(a);
        return false;
    }
    if (fsync(fileno(a->f)) != 0) {
        file_fail(err, err_size, a->path, "fsync failed: %s", strerror(errno));
        atomic_file_abort(a);
        return false;
    }
    FILE *f = a->f;
    a->f = NULL;
    if (fclose(f) != 0) {
        file_fail(err, err_size, a->path, "close failed: %s", strerror(errno));
        atomic_file_abort(a);
        return false;
    }
    if (rename(a->tmp, a->path) != 0) {
        file_fail(err, err_size, a->path, "rename from %s failed: %s", a->tmp, strerror(errno));
        atomic_file_abort(a);
        return false;
    }
    free(a->tmp); /* renamed: nothing left to remove */
    a->tmp = NULL;
    int rc = sync_dir(a->path);
    if (rc != 0) {
        file_fail(err, err_size, a->path, "fsync of the directory failed: %s", strerror(rc));
        atomic_file_abort(a);
        return false;
    }
    atomic_file_abort(a); /* frees the names */
    return true;
}
