/* The kernel caches: without a disk cache, a second program of the process links the kernels
 * the first compiled (jit/object_cache.c). The disk cache and its trust model
 * (jit/session.c): a second compile is served from disk; a damaged, planted or foreign
 * entry, a FIFO or a symlink in its place, and a directory other users could write each end
 * in a warning on the program and the right result, never a crash, a hang or foreign code
 * run. */
#include "support/support.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(jit_cache, .timeout = 120);

/* Compiles the step with this cache, runs it twice and returns the second loss; the
 * program's warnings and stats into *warnings (if not NULL) and *st. */
static float run_step_opts(jg_opts o, char *warnings, size_t size, jg_program_stats *st)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = t_mlp_step(g, &o);
    cr_assert(p, "%s", jg_errmsg(g));
    t_mlp_feed(p);
    float loss = NAN;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_get(p, 0, &loss, sizeof loss), JG_OK);
    if (warnings)
        snprintf(warnings, size, "%s", jg_program_warnings(p));
    if (st)
        jg_program_stats_get(p, st);
    jg_program_free(p);
    jg_graph_free(g);
    return loss;
}

static float run_step(const char *cache, char *warnings, size_t size, jg_program_stats *st)
{
    return run_step_opts((jg_opts){ .cache_dir = cache }, warnings, size, st);
}

static char *temp_dir(void)
{
    char *d = malloc(64);
    snprintf(d, 64, "/tmp/jg-cache-XXXXXX");
    cr_assert(mkdtemp(d));
    return d;
}

static void remove_dir(char *d)
{
    DIR *dir = opendir(d);
    struct dirent *ent;
    char path[512];
    while (dir && (ent = readdir(dir)))
        if (ent->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", d, ent->d_name);
            unlink(path);
        }
    if (dir)
        closedir(dir);
    rmdir(d);
    free(d);
}

/* The cache's entries (*.jgo), up to max paths; returns how many there are. */
static int entries(const char *dir, char paths[][512], int max)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    struct dirent *ent;
    int n = 0;
    while ((ent = readdir(d))) {
        size_t len = strlen(ent->d_name);
        if (len > 4 && strcmp(ent->d_name + len - 4, ".jgo") == 0) {
            if (n < max)
                snprintf(paths[n], 512, "%s/%s", dir, ent->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The loss without any cache: what every damaged-cache run must still compute. */
static float reference_loss(void) { return run_step(NULL, NULL, 0, NULL); }

Test(jit_cache, a_second_compile_is_served_from_disk)
{
    char *dir = temp_dir();
    jg_program_stats cold, warm;
    char w[4096];
    float a = run_step(dir, w, sizeof w, &cold), b = run_step(dir, w, sizeof w, &warm);
    cr_assert_eq(cold.cache_hits, 0);
    cr_assert_eq(warm.cache_hits, warm.kernels, "%d of %d kernels from disk", warm.cache_hits,
                 warm.kernels);
    cr_assert_eq(a, b);
    cr_assert_eq(a, reference_loss());
    cr_assert_str_empty(w, "%s", w);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    remove_dir(dir);
}

Test(jit_cache, a_missing_directory_is_created_private)
{
    char *parent = temp_dir(), dir[128];
    snprintf(dir, sizeof dir, "%s/kernels", parent);
    run_step(dir, NULL, 0, NULL);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "mode %o", st.st_mode & 0777);
    char paths[64][512];
    int n = entries(dir, paths, 64);
    cr_assert_gt(n, 0);
    for (int i = 0; i < n && i < 64; i++)
        unlink(paths[i]);
    rmdir(dir);
    remove_dir(parent);
}

/* Damages every entry with fn, then checks the next compile warns about each, computes the
 * right loss, and leaves entries that serve the compile after it. */
static void damaged_entries_are_refused(void (*damage)(const char *path, int i),
                                        const char *reason)
{
    char *dir = temp_dir();
    float want = run_step(dir, NULL, 0, NULL);
    char paths[64][512];
    int n = entries(dir, paths, 64);
    cr_assert(n > 0 && n <= 64);
    for (int i = 0; i < n; i++)
        damage(paths[i], i);
    char w[8192];
    jg_program_stats st;
    float got = run_step(dir, w, sizeof w, &st);
    cr_assert_eq(got, want, "%s: loss %g, want %g", reason, got, want);
    cr_assert_eq(st.cache_hits, 0, "%s: a damaged entry was used", reason);
    cr_assert(strstr(w, "warning: ignoring kernel cache file") && strstr(w, reason),
              "the warning names the file and '%s':\n%s", reason, w);
    cr_assert_geq(st.warnings, n, "one warning per entry: %d < %d", st.warnings, n);
    /* the refused entries were replaced: the next compile is served from disk, quietly */
    got = run_step(dir, w, sizeof w, &st);
    cr_assert_eq(got, want);
    cr_assert_eq(st.cache_hits, st.kernels, "%s: %d of %d from disk after the repair", reason,
                 st.cache_hits, st.kernels);
    cr_assert_str_empty(w, "%s", w);
    remove_dir(dir);
}

static void flip_body_byte(const char *path, int i)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    long at = 80 + (long)((unsigned)(i * 7919) % (unsigned)(st.st_size - 80)); /* in the object */
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

Test(jit_cache, a_flipped_byte_is_refused) { damaged_entries_are_refused(flip_body_byte, "digest mismatch"); }

static void truncate_entry(const char *path, int i)
{
    (void)i;
    cr_assert_eq(truncate(path, 40), 0);
}

Test(jit_cache, a_truncated_entry_is_refused) { damaged_entries_are_refused(truncate_entry, "truncated header"); }

/* A planted object: another kernel's entry (a real object file, with its own valid digests)
 * copied under this kernel's name. */
static char planted_from[600];

static void plant_other_kernel(const char *path, int i)
{
    (void)i;
    if (!planted_from[0]) { /* keep one kernel's bytes to plant everywhere */
        snprintf(planted_from, sizeof planted_from, "%.500s.keep", path);
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "cp '%.500s' '%.500s'", path, planted_from);
        cr_assert_eq(system(cmd), 0);
        return;
    }
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cp '%.500s' '%.500s'", planted_from, path);
    cr_assert_eq(system(cmd), 0);
}

Test(jit_cache, a_planted_object_is_refused)
{
    char *dir = temp_dir();
    float want = run_step(dir, NULL, 0, NULL);
    char paths[64][512];
    int n = entries(dir, paths, 64);
    cr_assert(n > 1 && n <= 64);
    planted_from[0] = '\0';
    for (int i = 0; i < n; i++)
        plant_other_kernel(paths[i], i);
    char w[8192];
    jg_program_stats st;
    float got = run_step(dir, w, sizeof w, &st);
    cr_assert_eq(got, want);
    cr_assert(strstr(w, "written for another kernel"), "%s", w);
    cr_assert_lt(st.cache_hits, st.kernels);
    unlink(planted_from);
    remove_dir(dir);
}

static void replace_with_fifo(const char *path, int i)
{
    (void)i;
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkfifo(path, 0600), 0);
}

Test(jit_cache, a_fifo_neither_blocks_nor_is_read) { damaged_entries_are_refused(replace_with_fifo, "not a regular file"); }

static void replace_with_symlink(const char *path, int i)
{
    (void)i;
    char target[600];
    snprintf(target, sizeof target, "%.500s.real", path);
    cr_assert_eq(rename(path, target), 0);
    cr_assert_eq(symlink(target, path), 0);
}

Test(jit_cache, a_symlink_is_not_followed)
{
    char *dir = temp_dir();
    float want = run_step(dir, NULL, 0, NULL);
    char paths[64][512];
    int n = entries(dir, paths, 64);
    for (int i = 0; i < n && i < 64; i++)
        replace_with_symlink(paths[i], i);
    char w[8192];
    jg_program_stats st;
    cr_assert_eq(run_step(dir, w, sizeof w, &st), want);
    cr_assert_eq(st.cache_hits, 0);
    cr_assert(strstr(w, "warning: ignoring kernel cache file"), "%s", w);
    for (int i = 0; i < n && i < 64; i++) {
        char real[600];
        snprintf(real, sizeof real, "%.500s.real", paths[i]);
        unlink(real);
    }
    remove_dir(dir);
}

Test(jit_cache, a_directory_others_can_write_is_not_used)
{
    char *dir = temp_dir();
    cr_assert_eq(chmod(dir, 0777), 0);
    char w[4096];
    jg_program_stats st;
    cr_assert_eq(run_step(dir, w, sizeof w, &st), reference_loss());
    cr_assert(strstr(w, "is not trusted") && strstr(w, "writable by group or others"), "%s", w);
    char paths[4][512];
    cr_assert_eq(entries(dir, paths, 4), 0, "nothing was written into it");
    remove_dir(dir);
}

Test(jit_cache, a_directory_of_another_user_is_not_used)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to give the directory away");
    char *dir = temp_dir();
    cr_assert_eq(chown(dir, 65534, 65534), 0);
    char w[4096];
    cr_assert_eq(run_step(dir, w, sizeof w, NULL), reference_loss());
    cr_assert(strstr(w, "owned by another user"), "%s", w);
    remove_dir(dir);
}

Test(jit_cache, a_directory_that_cannot_be_created_is_a_warning)
{
    char w[4096];
    cr_assert_eq(run_step("/proc/jitgrad-no-such-dir", w, sizeof w, NULL), reference_loss());
    cr_assert(strstr(w, "cannot be created"), "%s", w);
}

Test(jit_cache, a_foreign_file_in_the_directory_is_left_alone)
{
    char *dir = temp_dir();
    char other[512];
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    FILE *f = fopen(other, "w");
    fputs("not a kernel", f);
    fclose(f);
    float want = run_step(dir, NULL, 0, NULL);
    cr_assert_eq(run_step(dir, NULL, 0, NULL), want);
    struct stat st;
    cr_assert_eq(stat(other, &st), 0, "the cache deletes nothing of the user's");
    remove_dir(dir);
}

Test(jit_cache, a_second_program_links_what_the_process_compiled)
{
    unsetenv("JITGRAD_CACHE_DIR");
    jg_program_stats first, second, fresh;
    float a = run_step(NULL, NULL, 0, &first), b = run_step(NULL, NULL, 0, &second);
    float c = run_step_opts((jg_opts){ .fresh_compile = true }, NULL, 0, &fresh);
    cr_assert_eq(first.cache_hits, 0);
    cr_assert_eq(second.cache_hits, second.kernels, "%d of %d kernels from the process cache",
                 second.cache_hits, second.kernels);
    cr_assert_eq(fresh.cache_hits, 0, "fresh_compile compiles every kernel");
    cr_assert_eq(a, b);
    cr_assert_eq(a, c);
}
