/* Crash-safe file replacement (see atomic.h): temporary file, fsync, rename, directory fsync.
 * mkstemp gives a unique temporary name, so concurrent writers of one target never share a
 * temporary; the last rename wins. A temporary is named "<target>.jgtmp.<host>.<pid>.XXXXXX",
 * so what a killed writer left behind is recognisable: a successful save of the same target
 * (with remove_stale) removes this host's whose process no longer exists and that nobody has
 * written for a minute, never a live writer's, nor another host's or container's (whose
 * pids mean nothing here).
 */
#include "util/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

void atomic_file_host_tag(char out[ATOMIC_HOST_SIZE])
{
    char name[256] = "";
    if (gethostname(name, sizeof name - 1) != 0 || !name[0])
        snprintf(name, sizeof name, "host");
    size_t k = 0;
    for (const char *c = name; *c && k < ATOMIC_HOST_SIZE - 1; c++)
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-')
            out[k++] = *c;
    out[k] = '\0';
    if (!k)
        snprintf(out, ATOMIC_HOST_SIZE, "host");
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
    char host[ATOMIC_HOST_SIZE];
    atomic_file_host_tag(host);
    size_t n = strlen(path) + sizeof ".jgtmp...XXXXXX" + ATOMIC_HOST_SIZE + 24;
    a->path = dup_str(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        file_fail(err, err_size, path, "out of memory");
        atomic_file_abort(a);
        return false;
    }
    snprintf(a->tmp, n, "%s.jgtmp.%s.%ld.XXXXXX", path, host, (long)getpid());
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

/* Removes "<target>.jgtmp.<pid>.*" files of processes that no longer exist: temporaries a
 * crash (kill -9, power loss) left behind, each the size of the target. A live process's,
 * this one's included, may still be written. Best effort: a failure changes nothing. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    char dir[4096], prefix[600], full[4700], host[ATOMIC_HOST_SIZE];
    atomic_file_host_tag(host);
    if (dir_len >= sizeof dir ||
        strlen(base) + sizeof ".jgtmp.." + ATOMIC_HOST_SIZE > sizeof prefix)
        return;
    if (slash) /* "/x": the directory is "/" */
        snprintf(dir, sizeof dir, "%.*s", (int)(dir_len ? dir_len : 1), path);
    else
        snprintf(dir, sizeof dir, ".");
    snprintf(prefix, sizeof prefix, "%s.jgtmp.%s.", base, host);
    size_t plen = strlen(prefix);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (end == e->d_name + plen || *end != '.' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to ask about): perhaps still writing */
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && time(NULL) - st.st_mtime > 60)
            unlink(full);
    }
    closedir(d);
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
    if (a->remove_stale)
        remove_stale_temps(a->path);
    atomic_file_abort(a); /* frees the names */
    return true;
}
