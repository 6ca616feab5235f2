/* Every lesson program (examples/lessons, listed in jg-lessons.txt) in its quick mode:
 * it exits 0 and its last line is a verdict, HOLDS or DOES NOT HOLD, for its own number. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef JG_BUILD_DIR
#error "JG_BUILD_DIR: the build tree holding the lessons (set by CMakeLists.txt)"
#endif

TestSuite(lessons, .timeout = 1200);

/* The last non-empty line of a file, into line. */
static void last_line(const char *path, char *line, size_t size)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char buf[1024];
    line[0] = '\0';
    while (fgets(buf, sizeof buf, f))
        if (buf[0] != '\n')
            snprintf(line, size, "%s", buf);
    fclose(f);
}

Test(lessons, every_quick_mode_prints_a_verdict)
{
    FILE *m = fopen(JG_BUILD_DIR "/jg-lessons.txt", "r");
    cr_assert(m, "jg-lessons.txt missing");
    char out[] = "/tmp/jg_lessonsXXXXXX", bin[1024];
    cr_assert(mkdtemp(out));
    int count = 0, failed = 0;
    while (fgets(bin, sizeof bin, m)) {
        bin[strcspn(bin, "\n")] = '\0';
        if (!bin[0])
            continue;
        const char *base = strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin;
        int nn = atoi(base + strlen("lesson_"));
        char cmd[2400], log[256], line[1024], want[32];
        snprintf(log, sizeof log, "%s/%02d.log", out, nn);
        snprintf(cmd, sizeof cmd, "%s --quick --threads 2 --out %s > %s 2>&1", bin, out, log);
        int st = system(cmd);
        last_line(log, line, sizeof line);
        snprintf(want, sizeof want, "lesson %02d ", nn);
        bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && strncmp(line, want, strlen(want)) == 0 &&
                  (strstr(line, ": HOLDS (") || strstr(line, ": DOES NOT HOLD ("));
        if (!ok) {
            cr_log_error("%s --quick: exit %d, last line: %s", base,
                         WIFEXITED(st) ? WEXITSTATUS(st) : -1, line);
            failed++;
        }
        count++;
    }
    fclose(m);
    cr_assert_gt(count, 0, "no lessons built");
    cr_assert_eq(failed, 0, "%d of %d lessons failed their quick run (logs in %s)", failed,
                 count, out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", out);
    cr_assert_eq(system(cmd), 0);
}
