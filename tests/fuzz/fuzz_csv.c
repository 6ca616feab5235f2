/* libFuzzer target: the CSV reader behind jg_plot_csv (columns "step", "loss", "acc"). */
#include "fuzz_input.h"
#include "jitgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char svg[300];
    const char *csv = fuzz_file(data, size, ".csv");
    if (!svg[0])
        snprintf(svg, sizeof svg, "%s.svg", csv);
    const char *y[] = { "loss", "acc" };
    char err[256];
    jg_plot_csv(csv, svg, "step", y, 2, size && (data[0] & 1), err, sizeof err);
    return 0;
}
