#!/usr/bin/env bash
# Runs the README's three studies against a running Sweepyard (`make run` in another terminal) and saves
# the pictures they produce under docs/. SWEEPYARD_URL and SWEEPYARD_API_TOKEN are honoured as by every
# `sweepyard` client command.
set -euo pipefail
cd "$(dirname "$0")/.."
sy=.venv/bin/sweepyard
out=docs
mkdir -p "$out"

run_id() { sed -n 's/^run \([0-9]*\) .*/\1/p' | head -1; }
sweep_id() { sed -n 's/^sweep \([0-9]*\) .*/\1/p' | head -1; }

# 1. Under-fitting, a good fit and over-fitting on the 1-D regression.
for study in underfit good_fit overfit; do
    id=$($sy submit "examples/$study.yaml" | run_id)
    $sy watch "$id"
    $sy plot "$id" --kind predictions -o "$out/$study-predictions.png"
    $sy plot "$id" --kind loss -o "$out/$study-loss.png"
done

# 2. The depth x width table on noisy XOR, and a decision boundary through training.
id=$($sy sweep examples/depth_width.yaml | sweep_id)
$sy watch --sweep "$id"
$sy table "$id" --rows depth --cols width
$sy plot "$id" --sweep --kind heatmap --rows depth --cols width -o "$out/depth-width-heatmap.png"
run=$(printf 'depth: 2\nwidth: 4\nnoise: 0.25\nepochs: 200\n' | $sy submit - --name xor-boundary | run_id)
$sy watch "$run"
$sy plot "$run" --kind boundary -o "$out/xor-boundary.png"
$sy plot "$run" --kind boundary -o "$out/xor-boundary.gif"
$sy plot "$run" --kind loss -o "$out/xor-loss.png"

# 3. A random search over depth, width, lr, batch size, data size and noise: what mattered?
id=$($sy sweep examples/random_search.yaml | sweep_id)
$sy watch --sweep "$id"
$sy plot "$id" --sweep --kind importance -o "$out/random-importance.png"
$sy plot "$id" --sweep --kind parallel -o "$out/random-parallel.png"
$sy plot "$id" --sweep --kind curves -o "$out/random-curves.png"
