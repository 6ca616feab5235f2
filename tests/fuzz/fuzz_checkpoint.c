/* libFuzzer target: the safetensors readers on arbitrary bytes: jg_checkpoint_load,
 * jg_safetensors_import (by own names, and through a map with a transpose and a sum) and
 * jg_safetensors_read, into a graph with an f32 [2,3] and an f64 [2] parameter. Whatever the
 * bytes, each returns a status and the store stays usable. */
#include "fuzz_input.h"
#include "jitgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    jg_graph *g = jg_graph_new();
    jg_param(g, "w", jg_shape(2, 3), jg_zeros());
    jg_param_as(g, "v", JG_F64, jg_shape(2), jg_zeros());
    jg_checkpoint_load(g, path);
    jg_safetensors_import(g, path, NULL, 0);
    const jg_tensor_map map[3] = { { "w", "w", true }, { "v", "v", false }, { "b", "v", false } };
    jg_safetensors_import(g, path, map, 3);
    jg_array a;
    if (jg_safetensors_read(path, "w", JG_F64, &a, NULL, 0) == JG_OK)
        jg_array_free(&a);
    float w[6];
    if (jg_param_get(g, "w", w, sizeof w) != JG_OK)
        abort(); /* the store must survive any file */
    jg_graph_free(g);
    return 0;
}
