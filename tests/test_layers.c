/* The layering check (scripts/check-layers.sh): src/ passes it, and it catches what it is
 * for (an include from a higher layer, io looking past the IR, a cycle between files) in
 * small trees made here. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef JG_SOURCE_DIR
#error "JG_SOURCE_DIR: the source tree (set by CMakeLists.txt)"
#endif

/* Runs the check on dir; returns its exit status and its output in out. */
static int check(const char *dir, char *out, size_t size)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/check-layers.sh' '%s' 2>&1", JG_SOURCE_DIR, dir);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen");
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A tree under a fresh temporary directory: files[i] is "path", contents[i] its text. */
static void make_tree(char *root, size_t size, const char *const *files,
                      const char *const *contents, int n)
{
    snprintf(root, size, "/tmp/jg-layers-XXXXXX");
    cr_assert(mkdtemp(root), "mkdtemp");
    for (int i = 0; i < n; i++) {
        char path[512], cmd[600];
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", path);
        cr_assert(system(cmd) == 0);
        FILE *f = fopen(path, "w");
        cr_assert(f, "%s", path);
        fputs(contents[i], f);
        fclose(f);
    }
}

static void remove_tree(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert(system(cmd) == 0);
}

/* The check's status on a tree of n files made for it (then removed); its output in out. */
static int check_tree(const char *const *files, const char *const *text, int n, char *out,
                      size_t size)
{
    char root[64];
    make_tree(root, sizeof root, files, text, n);
    int rc = check(root, out, size);
    remove_tree(root);
    return rc;
}

Test(layers, src_is_layered)
{
    char out[8192];
    int rc = check(JG_SOURCE_DIR "/src", out, sizeof out);
    cr_assert_eq(rc, 0, "the layering check fails on src/:\n%s", out);
    cr_assert(strstr(out, "check-layers: ok"), "%s", out);
}

Test(layers, downward_includes_pass)
{
    const char *files[] = { "util/u.h", "graph/g.h", "ops/o.c", "io/i.c" };
    const char *text[] = { "", "#include \"util/u.h\"\n", "#include \"graph/g.h\"\n#include \"jitgrad.h\"\n",
                           "#include \"graph/g.h\"\n" };
    char out[4096];
    int rc = check_tree(files, text, 4, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
}

Test(layers, upward_include_fails)
{
    const char *files[] = { "graph/g.c", "program/p.h" };
    const char *text[] = { "/* x */\n#include \"program/p.h\"\n", "" };
    char out[4096];
    int rc = check_tree(files, text, 2, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "graph/g.c:2: graph includes \"program/p.h\" from program"), "%s", out);
}

Test(layers, io_looks_only_at_the_ir)
{
    const char *files[] = { "io/i.c", "ops/op.h", "jit/k.c", "io/i.h" };
    const char *text[] = { "#include \"ops/op.h\"\n", "", "#include \"io/i.h\"\n", "" };
    char out[4096];
    int rc = check_tree(files, text, 4, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "io/i.c:1: io includes \"ops/op.h\""), "%s", out);
    cr_assert(strstr(out, "jit/k.c:1: includes \"io/i.h\""), "%s", out);
}

Test(layers, cycle_within_a_folder_fails)
{
    const char *files[] = { "jit/a.h", "jit/b.h" };
    const char *text[] = { "#include \"b.h\"\n", "#include \"jit/a.h\"\n" };
    char out[4096];
    int rc = check_tree(files, text, 2, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "include cycle"), "%s", out);
}

Test(layers, unknown_folder_fails)
{
    const char *files[] = { "misc/m.c" };
    const char *text[] = { "" };
    char out[4096];
    int rc = check_tree(files, text, 1, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "folder 'misc' is not a layer"), "%s", out);
}
