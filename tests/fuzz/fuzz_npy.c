/* libFuzzer target: jg_npy_read on arbitrary bytes. */
#include "fuzz_input.h"
#include "jitgrad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jg_array a;
    char err[256];
    if (jg_npy_read(fuzz_file(data, size, ".npy"), &a, err, sizeof err) == JG_OK) {
        volatile unsigned char sink = 0;
        size_t n = (size_t)jg_shape_numel(a.shape) * jg_dtype_size(a.dtype);
        for (size_t i = 0; i < n; i += 4096)
            sink ^= ((const unsigned char *)a.data)[i]; /* the data is all there */
        (void)sink;
    }
    jg_array_free(&a);
    return 0;
}
