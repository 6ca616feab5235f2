"""Which BLAS PyTorch runs on, and which OpenBLAS core is fastest for it here.

    python3 blas_core.py           prints the BLAS library PyTorch loaded and its OpenBLAS core
                                   ("Haswell", "SkylakeX", ...); exits 2 when it is not
                                   OpenBLAS (Debian's reference libblas3 is 5-10x slower: no
                                   fair anchor)
    python3 blas_core.py --best    also times a 1024x1024 sgemm on 1 thread under the detected
                                   core and each AVX-512 core this CPU can run (a process
                                   each, OPENBLAS_CORETYPE set), and prints the fastest as a
                                   last line "best <core>"

OpenBLAS picks its kernels by CPU model unless OPENBLAS_CORETYPE names a core: a model newer
than the library falls back to an older core, and an environment may pin one (the machines
these figures come from set OPENBLAS_CORETYPE=Haswell, an AVX2 core at half the AVX-512
cores' speed, while 0.3.21 detects their AVX-512 EPYC as Cooperlake when left alone). So
run.sh's tuned config sets OPENBLAS_CORETYPE to the fastest core measured here, and the
detected core is reported with where it came from."""
import ctypes
import os
import re
import subprocess
import sys
import time


def loaded_blas():
    """(path, corename or None) of the BLAS in this process after a torch matmul."""
    import torch
    torch.randn(64, 64) @ torch.randn(64, 64)
    paths = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            m = re.search(r"(/\S*(?:blas|openblas)\S*\.so[.\d]*)$", line.strip())
            if m and m.group(1) not in paths:
                paths.append(m.group(1))
    for p in paths:
        try:
            fn = ctypes.CDLL(p).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return p, fn().decode()
    return (paths[0] if paths else "none"), None


def sgemm_gflops():
    import torch
    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        times.append(time.perf_counter() - t)
    return 2 * 1024 ** 3 * 4 / min(times) / 1e9


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def main():
    if "--gflops" in sys.argv:  # the child of --best
        print(f"{sgemm_gflops():.1f}")
        return 0
    path, core = loaded_blas()
    if core is None:
        print(f"blas: {path} is not OpenBLAS (a reference BLAS?): PyTorch would be 5-10x "
              "slower than it should be; install libopenblas0-pthread", file=sys.stderr)
        return 2
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    origin = f"OPENBLAS_CORETYPE={pinned} in the environment" if pinned else "detected"
    print(f"blas: {path}, OpenBLAS core {core} ({origin})")
    if "--best" not in sys.argv:
        return 0
    flags = cpu_flags()
    candidates = [os.environ.get("OPENBLAS_CORETYPE") or None]
    if "avx512f" in flags:
        candidates.append("SkylakeX")
    if "avx512_bf16" in flags:
        candidates.append("Cooperlake")
    best, best_gf = core, -1.0
    for c in candidates:
        env = dict(os.environ)
        env.pop("OPENBLAS_CORETYPE", None)
        env["OPENBLAS_NUM_THREADS"] = "1"
        if c:
            env["OPENBLAS_CORETYPE"] = c
        out = subprocess.run([sys.executable, __file__, "--gflops"], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        gf = float(out[-1])
        name = c or f"{core} ({origin})"
        print(f"blas: sgemm 1024, 1 thread, core {name}: {gf:.1f} GFLOP/s")
        if gf > best_gf:
            best, best_gf = (c or core), gf
    print(f"best {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
