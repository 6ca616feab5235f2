/* The API reference: Doxygen over include/jitgrad.h (docs/Doxyfile.in, make docs) finds every
 * public function, type, macro, field and enum value documented, and reports one that is
 * not (checked on a copy of the header with an undocumented macro added). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(JG_BUILD_DIR) || !defined(JG_SOURCE_DIR)
#error "JG_BUILD_DIR and JG_SOURCE_DIR are set by CMakeLists.txt"
#endif

TestSuite(docs, .timeout = 300);

/* Runs Doxygen with the project's configuration over `input` into a fresh directory;
 * returns its exit status and the warnings it wrote into `warnings`. */
static int doxygen(const char *input, char *warnings, size_t size)
{
    char dir[] = "/tmp/jg_docs_XXXXXX", cmd[2048];
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd,
             "(cat %s/Doxyfile; echo 'INPUT = %s'; echo 'OUTPUT_DIRECTORY = %s'; "
             "echo 'WARN_LOGFILE = %s/warnings.txt') | doxygen - > %s/log.txt 2>&1",
             JG_BUILD_DIR, input, dir, dir, dir);
    int st = system(cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/warnings.txt", dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(warnings, 1, size - 1, f) : 0;
    warnings[n] = '\0';
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(docs, every_public_symbol_is_documented)
{
    char w[16384];
    int st = doxygen(JG_SOURCE_DIR "/include/jitgrad.h", w, sizeof w);
    cr_assert_eq(st, 0, "doxygen failed (is it installed? scripts/setup.sh installs it)");
    cr_assert_str_empty(w, "undocumented or malformed in jitgrad.h:\n%s", w);
}

Test(docs, an_undocumented_symbol_is_reported)
{
    char dir[] = "/tmp/jg_docs_h_XXXXXX", header[64], cmd[1024], w[16384];
    cr_assert(mkdtemp(dir));
    snprintf(header, sizeof header, "%s/jitgrad.h", dir); /* Doxygen goes by the suffix */
    /* a macro without a comment, just before the header's last line */
    snprintf(cmd, sizeof cmd, "sed '$i #define jg_not_documented 1' %s/include/jitgrad.h > %s",
             JG_SOURCE_DIR, header);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(doxygen(header, w, sizeof w), 0);
    unlink(header);
    rmdir(dir);
    cr_assert(strstr(w, "jg_not_documented") && strstr(w, "not documented"), "%s", w);
}
