#!/usr/bin/env bash
# test_eval_inputs.sh PSTRAIN: `pstrain eval CKPT --inputs FILE`, the reference `pstrain serve`
# is compared with: a few steps of mnist_cnn (and of mnist_gan), then MNIST test images as
# uint8 "pixels" and as float "images" (nested 28x28x1): one JSON line that parses, 10
# probabilities a sample summing to 1, the same bits from both inputs (pixels / 255 is the
# data set's conversion) and from --threads 1 and 2 where each holds a batch in one pass; the
# GAN's seeds give 28x28x1 images in [-1, 1], seed S's the first digit of `pstrain sample
# --seed S`; bad files end with status 2 and one line naming file and field.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

"$pstrain" train --model mnist_cnn --max-steps 5 --checkpoint-dir "$tmp/ck" --threads 1 \
    --progress 0 >"$tmp/train.out" 2>&1 || { cat "$tmp/train.out"; fail "train mnist_cnn"; }

# The first 6 test images as pixels (flat) and as images (nested, values i / 255).
"$py" - "$data/mnist/t10k-images-idx3-ubyte" "$tmp" <<'EOF'
import json, sys
raw = open(sys.argv[1], 'rb').read()[16:]
imgs = [list(raw[i * 784:(i + 1) * 784]) for i in range(6)]
d = sys.argv[2]
json.dump({"input": "pixels", "data": imgs}, open(d + '/pixels.json', 'w'))
json.dump({"input": "images", "data": [[[[v / 255] for v in im[r * 28:(r + 1) * 28]]
                                        for r in range(28)] for im in imgs]},
          open(d + '/images.json', 'w'))
bad = [list(im) for im in imgs]
bad[3] = bad[3][:783]
json.dump({"input": "pixels", "data": bad}, open(d + '/short.json', 'w'))
bad = [[v / 255 for v in im] for im in imgs]
bad[2][17] = 1.5
json.dump({"input": "images", "data": bad}, open(d + '/high.json', 'w'))
json.dump({"input": "text", "data": imgs}, open(d + '/name.json', 'w'))
open(d + '/broken.json', 'w').write('{"input": "pixels", "data": [[1, 2,')
EOF

run() { # run NAME ARGS...: eval --inputs, status 0, stdout to $tmp/NAME.out
    local name=$1
    shift
    "$pstrain" eval "$tmp/ck" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
        { cat "$tmp/$name.err"; fail "$name: eval $*"; }
}
run pixels --inputs "$tmp/pixels.json" --threads 1
run images --inputs "$tmp/images.json" --threads 1
run batched --inputs "$tmp/pixels.json" --threads 1 --batch 4 --max-batch 8
run threads --inputs "$tmp/pixels.json" --threads 2 --batch 4 --max-batch 8

"$py" - "$tmp" <<'EOF' || fail "the outputs"
import json, sys
d = sys.argv[1]
def load(name):
    lines = open(d + '/' + name + '.out').read().splitlines()
    assert len(lines) == 1, (name, len(lines))
    j = json.loads(lines[0])
    assert j["model"] == "mnist_cnn" and j["version"] == 5, j
    assert j["output"] == "probabilities", j["output"]
    assert len(j["data"]) == 6, len(j["data"])
    for p in j["data"]:
        assert len(p) == 10 and all(0 <= v <= 1 for v in p), p
        assert abs(sum(p) - 1) < 1e-5, sum(p)
    return j["data"]
pixels, images = load('pixels'), load('images')
assert pixels == images, "pixels and images differ"
# max_batch 8 over 1 or 2 threads: passes of 8 or 4 rows, each batch of 4 (and the last of 2)
# one pass either way: the same products, the same bits
batched, threads = load('batched'), load('threads')
assert batched == threads, "--threads 1 and 2 differ at one pass size"
print("PASS: 6 samples, 10 probabilities each summing to 1; pixels == images; threads agree")
EOF

# Bad files: status 2, one line, naming the file and the field.
refused() { # refused WHAT WANT ARGS...
    local what=$1 want=$2 rc=0
    shift 2
    "$pstrain" eval "$tmp/ck" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
    [[ $rc -eq 2 ]] || { cat "$tmp/bad.err"; fail "$what: status $rc, expected 2"; }
    [[ ! -s "$tmp/bad.out" ]] || fail "$what: wrote to stdout"
    [[ $(wc -l <"$tmp/bad.err") -eq 1 ]] || { cat "$tmp/bad.err"; fail "$what: not one line"; }
    grep -qF -- "$want" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "$what: expected '$want'"; }
    echo "PASS: $what: $(cat "$tmp/bad.err")"
}
refused "a short image" "$tmp/short.json: data[3]: expected 784 values, got 783" \
    --inputs "$tmp/short.json"
refused "a value over 1" "$tmp/high.json: data[2]: value 17 is 1.5: expected a number in [0, 1]" \
    --inputs "$tmp/high.json"
refused "another model's input" "$tmp/name.json: input: expected \"images\" or \"pixels\"" \
    --inputs "$tmp/name.json"
refused "broken JSON" "$tmp/broken.json: line 1" --inputs "$tmp/broken.json"
refused "no such file" "$tmp/none.json: cannot open: No such file or directory" --inputs "$tmp/none.json"
mkfifo "$tmp/fifo.json"
refused "a FIFO" "$tmp/fifo.json: expected a regular file, found a FIFO" --inputs "$tmp/fifo.json"
refused "--batch over --max-batch" "--batch: 9 samples a pass, over --max-batch 8" \
    --inputs "$tmp/pixels.json" --batch 9 --max-batch 8

# The GAN: seeds to images (28, 28, 1) in [-1, 1], as `pstrain sample` draws them.
"$pstrain" train --model mnist_gan --max-steps 2 --checkpoint-dir "$tmp/gan" --threads 1 \
    --progress 0 >"$tmp/train.out" 2>&1 || { cat "$tmp/train.out"; fail "train mnist_gan"; }
echo '{"input": "seed", "data": [7, 8, 7]}' >"$tmp/seeds.json"
"$pstrain" eval "$tmp/gan" --inputs "$tmp/seeds.json" >"$tmp/gan.out" || fail "eval the GAN"
"$pstrain" sample "$tmp/gan" --seed 7 --n 1 --out "$tmp/seed7.png" >/dev/null || fail "sample"
"$py" - "$tmp/gan.out" "$tmp/seed7.png" <<'EOF' || fail "the GAN's outputs"
import json, struct, sys, zlib
import numpy as np

def png_grey(path):
    """An 8-bit grey PNG's levels (h, w), its filters undone."""
    b = open(path, 'rb').read()
    assert b[:8] == b'\x89PNG\r\n\x1a\n'
    pos, idat = 8, b''
    while pos < len(b):
        n, t = struct.unpack('>I4s', b[pos:pos + 8])
        c = b[pos + 8:pos + 8 + n]
        pos += 12 + n
        if t == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', c[:10])
            assert (depth, ctype) == (8, 0), (depth, ctype)
        elif t == b'IDAT':
            idat += c
    raw = zlib.decompress(idat)
    out, prev = [], [0] * w
    for y in range(h):
        f, row, cur = raw[y * (w + 1)], raw[y * (w + 1) + 1:(y + 1) * (w + 1)], []
        for x in range(w):
            a, up, c = (cur[x - 1] if x else 0), prev[x], (prev[x - 1] if x else 0)
            pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
            p = [0, a, up, (a + up) // 2,
                 a if pa <= pb and pa <= pc else (up if pb <= pc else c)][f]
            cur.append((row[x] + p) & 255)
        out.append(cur)
        prev = cur
    return np.array(out)

j = json.loads(open(sys.argv[1]).read())
assert j["model"] == "mnist_gan" and j["output"] == "images", j["model"]
img = j["data"]
assert len(img) == 3 and len(img[0]) == 28 and len(img[0][0]) == 28 and len(img[0][0][0]) == 1
assert all(-1 <= p[0] <= 1 for im in img for row in im for p in row)
assert img[0] == img[2] and img[0] != img[1], "a seed's image is its own"
# seed 7's image is the digit `pstrain sample --seed 7` draws first (inside its 2-pixel border),
# grey levels as the grid's: lrintf(255 (v + 1) / 2), clamped
grid = png_grey(sys.argv[2])
v = (np.array(img[0], np.float32)[:, :, 0] + np.float32(1)) * np.float32(127.5)
want = np.rint(np.clip(v, 0, 255)).astype(np.int64)
assert (grid[2:30, 2:30] == want).all(), "seed 7 is not sample --seed 7's first digit"
print("PASS: the GAN: 3 images of 28x28x1 in [-1, 1]; seed 7 is sample --seed 7's first digit")
EOF
