"""Makes the comparison's figures from the JSON lines of bench/torch/run.sh's runs (jitgrad's
bench_fashion and bench_torch.py under the configs "tuned" and "installed", several rounds):
per model and measurement, the median of each side over the rounds, one JSON line in the
format of bench/bench_util.h with ratio = PyTorch tuned / jitgrad (> 1: jitgrad is better,
for memory too) and the installed PyTorch as extra fields, then a short table.

    python3 compare.py RESULTS.jsonl

Exits 1 only when figures are absent: a missed target is reported, not an error."""
import json
import statistics
import sys

# measurement -> (target ratio over tuned PyTorch, what it means); the epoch's target is per
# model (the convolution/recurrent issue: the MLP stays >= 5, the CNN >= 2, the LSTM >= 3)
TARGETS = {"epoch": (2.0, "epoch time"), "step_b1": (10.0, "batch-1 step"),
           "peak_rss": (1.0, "peak RSS")}
EPOCH_TARGETS = {"mlp": 5.0, "cnn": 2.0, "rnn": 3.0}
MODELS = ("mlp", "cnn", "rnn")


def main():
    runs = {}  # (bench, side) -> [values]
    units, steps, compile_s, blas = {}, {}, {}, {}
    with open(sys.argv[1]) as f:
        for text in f:
            text = text.strip()
            if not text.startswith("{"):
                continue
            line = json.loads(text)
            side = "jitgrad" if line.get("impl") == "jitgrad" else line.get("config", "?")
            runs.setdefault((line["bench"], side), []).append(line["value"])
            units[line["bench"]] = line["unit"]
            steps.setdefault((line["bench"], side), line.get("timed_steps"))
            if "blas" in line:
                blas.setdefault(side, line["blas"])
            if "compile_s" in line:
                compile_s.setdefault(line["bench"], []).append(line["compile_s"])
    rows, absent = [], 0
    for model in MODELS:
        for what, (target, label) in TARGETS.items():
            if what == "epoch":
                target = EPOCH_TARGETS[model]
            bench = f"fashion_{model}_{what}"
            jg = runs.get((bench, "jitgrad"), [])
            tuned = runs.get((bench, "tuned"), [])
            inst = runs.get((bench, "installed"), [])
            if not jg or not tuned:
                print(f"compare: no figures for {bench}", file=sys.stderr)
                absent += 1
                continue
            v, r = statistics.median(jg), statistics.median(tuned)
            ratio = r / v
            met = ratio >= target
            line = {"bench": bench, "value": round(v, 6), "unit": units[bench],
                    "ref": "pytorch_1.13_tuned", "ref_value": round(r, 6),
                    "ratio": round(ratio, 4), "ref_blas": blas.get("tuned", "?")}
            if inst:
                ri = statistics.median(inst)
                line.update(ref_installed_value=round(ri, 6), ratio_installed=round(ri / v, 4))
            # under a noisy load: the median of each round's own ratio (the runs of a round
            # are adjacent in time), and the ratio of the least disturbed runs
            pairs = [t / j for j, t in zip(jg, tuned)]
            line.update(ratio_paired_median=round(statistics.median(pairs), 4),
                        ratio_of_best=round(min(tuned) / min(jg), 4))
            line.update(target_ratio=target, met=met, rounds=len(jg),
                        jitgrad_values=jg, tuned_values=tuned, installed_values=inst,
                        jitgrad_timed_steps=steps.get((bench, "jitgrad")),
                        tuned_timed_steps=steps.get((bench, "tuned")),
                        installed_timed_steps=steps.get((bench, "installed")))
            if bench in compile_s:  # jitgrad's, not in the step time
                line["jitgrad_compile_s"] = round(statistics.median(compile_s[bench]), 3)
            if what == "epoch":
                line["epoch"] = "median step x 60000/128"
            print(json.dumps(line), flush=True)
            rows.append((model, label, units[bench], v, r,
                         statistics.median(inst) if inst else float("nan"), ratio,
                         line["ratio_paired_median"], target, met))
    print()
    print(f"{'model':5s} {'measure':13s} {'jitgrad':>11s} {'torch tuned':>12s} "
          f"{'torch inst.':>12s} {'ratio':>7s} {'paired':>7s} {'target':>7s}")
    for model, label, unit, v, r, ri, ratio, paired, target, met in rows:
        print(f"{model:5s} {label:13s} {v:8.3g} {unit:2s} {r:9.3g} {unit:2s} "
              f"{ri:9.3g} {unit:2s} {ratio:6.2f}x {paired:6.2f}x "
              f"{'>=' + format(target, 'g'):>6s}x "
              f"{'met' if met else 'MISSED'}")
    print("(ratio: tuned PyTorch / jitgrad, > 1 means jitgrad is better, from the medians over "
          "the rounds; paired: the median of each round's ratio; epoch = median step x "
          "60000/128)")
    return 1 if absent else 0  # a missed target is a finding, not a failure


if __name__ == "__main__":
    sys.exit(main())
