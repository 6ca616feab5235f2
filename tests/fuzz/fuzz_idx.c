/* libFuzzer target: jg_idx_read on arbitrary bytes, raw or gzip (zlib tells them apart), read
 * as f32 or i32 as the first byte's low bit says. */
#include "fuzz_input.h"
#include "jitgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jg_array a;
    char err[256];
    jg_dtype as = size && (data[size - 1] & 1) ? JG_I32 : JG_F32;
    if (jg_idx_read(fuzz_file(data, size, ".idx"), as, &a, err, sizeof err) == JG_OK) {
        volatile unsigned char sink = 0;
        size_t n = (size_t)jg_shape_numel(a.shape) * jg_dtype_size(a.dtype);
        for (size_t i = 0; i < n; i += 4096)
            sink ^= ((const unsigned char *)a.data)[i];
        (void)sink;
    }
    jg_array_free(&a);
    return 0;
}
