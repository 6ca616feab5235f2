/* jitgrad as others get it: scripts/test-install.sh installs the build into a fresh prefix,
 * builds examples/consumer against the installed files alone (pkg-config + make,
 * find_package + CMake, static), trains with each, runs every code block of
 * docs/TUTORIAL.md, checks the exported symbols and the Debian packages (make deb). Release build only: a sanitized library would need the
 * sanitizer runtime in every consumer. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#if !defined(JG_BUILD_DIR) || !defined(JG_SOURCE_DIR)
#error "JG_BUILD_DIR and JG_SOURCE_DIR are set by CMakeLists.txt"
#endif

TestSuite(install, .timeout = 600);

Test(install, the_installed_library_builds_and_trains_a_consumer_three_ways)
{
    char cmd[1024], out[16384] = "";
    snprintf(cmd, sizeof cmd, "bash %s/scripts/test-install.sh %s 60 2>&1", JG_SOURCE_DIR,
             JG_BUILD_DIR);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "test-install.sh failed:\n%s", out);
    const char *want[] = { "SONAME libjitgrad.so.0; exports jg_ symbols only",
                           "pkg-config + make: consumer_mlp: 60 steps",
                           "find_package + cmake: consumer_mlp: 60 steps",
                           "pkg-config --static: consumer_mlp: 60 steps",
                           "the tutorial: 4 programs built and run",
                           "libjitgrad0_0.1.0_", "test-install: PASS" };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(out, want[i]), "'%s' missing from:\n%s", want[i], out);
}
