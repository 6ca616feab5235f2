/* libFuzzer target: jg_checkpoint_load (safetensors) on arbitrary bytes, into a graph with an
 * f32 [2,3] and an f64 [2] parameter. Whatever the bytes, the load returns a status and the
 * store stays usable. */
#include "fuzz_input.h"
#include "jitgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    jg_graph *g = jg_graph_new();
    jg_param(g, "w", jg_shape(2, 3), jg_zeros());
    jg_param_as(g, "v", JG_F64, jg_shape(2), jg_zeros());
    jg_checkpoint_load(g, path);
    float w[6];
    if (jg_param_get(g, "w", w, sizeof w) != JG_OK)
        abort(); /* the store must survive any file */
    jg_graph_free(g);
    return 0;
}
