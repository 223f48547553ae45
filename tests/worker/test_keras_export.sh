#!/usr/bin/env bash
# test_keras_export.sh PSTRAIN: Keras full-model files (issue 20). Each of the three models
# trains a few steps to a checkpoint and `pstrain export --keras` writes what Keras 2.13's
# model.save writes: h5py reads the JSON of model_config and training_config, finds the
# model's layers with their Keras configs and the checkpoint's weights bit for bit (a GAN: two
# files, the generator from the moving average, or with --live its own weights). Then
# `train --init-from` of an exported file (and of a file laid out as Keras's own h5py writes
# it) starts from exactly those weights, alone and as a job, and a file of another model or
# with an edited shape is refused in one line naming the layer, status 2.
set -euo pipefail
pstrain=$1
data=${PSTRAIN_DATA:?PSTRAIN_DATA must name the data directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=/usr/bin/python3

run() { # run LOG CMD...: must succeed
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { cat "$log"; fail "$log: status $?"; }
}

common=(--threads 1 --progress 0 --data "$data")
run "$tmp/cnn.log" "$pstrain" train --model mnist_cnn --max-steps 3 "${common[@]}" \
    --checkpoint-dir "$tmp/cnn"
run "$tmp/gan.log" "$pstrain" train --model mnist_gan --batch 8 --max-steps 2 "${common[@]}" \
    --checkpoint-dir "$tmp/gan"
run "$tmp/imdb.log" "$pstrain" train --model imdb_lstm --batch 8 --max-steps 2 "${common[@]}" \
    --checkpoint-dir "$tmp/imdb"

mkdir "$tmp/out"
run "$tmp/e1.log" "$pstrain" export "$tmp/cnn" --keras "$tmp/out/cnn.h5"
run "$tmp/e2.log" "$pstrain" export "$tmp/imdb" --keras "$tmp/out/imdb.h5"
run "$tmp/e3.log" "$pstrain" export "$tmp/gan" --keras "$tmp/out/gan.h5"
run "$tmp/e4.log" "$pstrain" export "$tmp/gan" --keras "$tmp/out/live.h5" --live
for f in cnn imdb gan-generator gan-discriminator live-generator live-discriminator; do
    [[ -f "$tmp/out/$f.h5" ]] || fail "export wrote no $f.h5"
done

# check.py CKPT FILE MODEL [ema]: the h5py checks of one exported file.
cat >"$tmp/check.py" <<'PY'
import json, sys
import h5py, numpy as np

ckpt_path, path, model = sys.argv[1:4]
ema = len(sys.argv) > 4
c, f = h5py.File(ckpt_path, "r"), h5py.File(path, "r")

def expect(cond, what):
    if not cond:
        sys.exit(f"{path}: {what}")

# model_metadata's items: str as h5py writes a str, the JSON as bytes
for k in ("keras_version", "backend"):
    expect(isinstance(f.attrs[k], str), f"@{k} is {type(f.attrs[k])}, expected str")
expect(f.attrs["keras_version"] == "2.13.1" and f.attrs["backend"] == "tensorflow", "version")
for k in ("model_config", "training_config"):
    expect(isinstance(f.attrs[k], bytes), f"@{k} is {type(f.attrs[k])}, expected bytes")
mc = json.loads(f.attrs["model_config"].decode("utf8"))
tc = json.loads(f.attrs["training_config"].decode("utf8"))

gl = dict(class_name="GlorotUniform", config=dict(seed=None))
zeros, ones = dict(class_name="Zeros", config={}), dict(class_name="Ones", config={})
def conv(name, filters, k, s, pad, act, bias=True, first=None):
    d = dict(name=name, filters=filters, kernel_size=[k, k], strides=[s, s], padding=pad,
             data_format="channels_last", dilation_rate=[1, 1], groups=1, activation=act,
             use_bias=bias, kernel_initializer=gl, bias_initializer=zeros)
    if first:
        d["batch_input_shape"] = first
    return d
def dense(name, units, act, bias=True, first=None):
    d = dict(name=name, units=units, activation=act, use_bias=bias, kernel_initializer=gl,
             bias_initializer=zeros)
    if first:
        d["batch_input_shape"] = first
    return d
def bn(name, axis):
    return dict(name=name, axis=[axis], momentum=0.99, epsilon=0.001, center=True, scale=True,
                gamma_initializer=ones, moving_variance_initializer=ones)
lrelu = lambda name: ("LeakyReLU", dict(name=name, alpha=float(np.float32(0.3))))
pool = lambda name: ("MaxPooling2D", dict(name=name, pool_size=[2, 2], strides=[2, 2],
                                           padding="valid", data_format="channels_last"))
want = {
    "mnist_cnn": ("sequential", [
        ("Conv2D", conv("conv2d", 32, 3, 1, "valid", "relu", first=[None, 28, 28, 1])),
        pool("max_pooling2d"),
        ("Conv2D", conv("conv2d_1", 64, 3, 1, "valid", "relu")),
        pool("max_pooling2d_1"),
        ("Flatten", dict(name="flatten", data_format="channels_last")),
        ("Dense", dense("dense", 128, "relu")),
        ("Dropout", dict(name="dropout", rate=0.5, noise_shape=None, seed=None)),
        ("Dense", dense("dense_1", 10, "softmax"))]),
    "imdb_lstm": ("sequential", [
        ("Embedding", dict(name="embedding", input_dim=10000, output_dim=32, input_length=200,
                           batch_input_shape=[None, 200], mask_zero=False,
                           embeddings_initializer=dict(class_name="RandomUniform", config=dict(
                               minval=-0.05, maxval=0.05, seed=None)))),
        ("LSTM", dict(name="lstm", units=128, activation="tanh", recurrent_activation="sigmoid",
                      return_sequences=False, unit_forget_bias=True, implementation=2,
                      recurrent_initializer=dict(class_name="Orthogonal",
                                                 config=dict(gain=1.0, seed=None)))),
        ("Dropout", dict(name="dropout", rate=0.5)),
        ("Dense", dense("dense", 1, "sigmoid"))]),
    "generator": ("sequential", [
        ("Dense", dense("dense", 12544, "linear", bias=False, first=[None, 100])),
        ("BatchNormalization", bn("batch_normalization", 1)), lrelu("leaky_re_lu"),
        ("Reshape", dict(name="reshape", target_shape=[7, 7, 256])),
        ("Conv2DTranspose", conv("conv2d_transpose", 128, 5, 1, "same", "linear", bias=False)),
        ("BatchNormalization", bn("batch_normalization_1", 3)), lrelu("leaky_re_lu_1"),
        ("Conv2DTranspose", conv("conv2d_transpose_1", 64, 5, 2, "same", "linear", bias=False)),
        ("BatchNormalization", bn("batch_normalization_2", 3)), lrelu("leaky_re_lu_2"),
        ("Conv2DTranspose", conv("conv2d_transpose_2", 1, 5, 2, "same", "tanh", bias=False))]),
    "discriminator": ("sequential_1", [
        ("Conv2D", conv("conv2d", 64, 5, 2, "same", "linear", first=[None, 28, 28, 1])),
        lrelu("leaky_re_lu_3"), ("Dropout", dict(name="dropout", rate=0.3)),
        ("Conv2D", conv("conv2d_1", 128, 5, 2, "same", "linear")),
        lrelu("leaky_re_lu_4"), ("Dropout", dict(name="dropout_1", rate=0.3)),
        ("Flatten", dict(name="flatten")),
        ("Dense", dense("dense_1", 1, "linear"))]),
}
name, layers = want[model]
expect(mc["class_name"] == "Sequential" and mc["config"]["name"] == name, f"model {mc['config']['name']}")
got = mc["config"]["layers"]
first = layers[0][1]["batch_input_shape"]
expect(got[0]["class_name"] == "InputLayer" and
       got[0]["config"]["batch_input_shape"] == first and
       got[0]["config"]["name"] == layers[0][1]["name"] + "_input", f"input layer {got[0]}")
expect(len(got) == len(layers) + 1, f"{len(got) - 1} layers, expected {len(layers)}")
for (cls, cfg), g in zip(layers, got[1:]):
    expect(g["class_name"] == cls, f"layer {cfg['name']}: class {g['class_name']}, expected {cls}")
    for k, v in cfg.items():
        expect(g["config"].get(k, "missing") == v,
               f"layer {cfg['name']}: {k} {g['config'].get(k, 'missing')!r}, expected {v!r}")
    expect(g["config"]["trainable"] is True and g["config"]["dtype"] == "float32", cfg["name"])

# load_model builds each layer as cls(**config) (Layer.from_config): every key must be one of
# Keras 2.13's __init__ arguments, or one Layer.__init__ takes (allowed_kwargs and its own);
# an InputLayer has no "optional" before tf-keras 2.16
base = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
        "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}
reg = lambda *w: {f"{x}_{k}" for x in w for k in ("initializer", "regularizer", "constraint")}
conv_args = {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
             "groups", "activation", "use_bias"} | reg("kernel", "bias")
accepts = {
    "InputLayer": {"input_shape", "batch_size", "dtype", "input_tensor", "sparse", "name",
                   "ragged", "type_spec", "batch_input_shape"},
    "Conv2D": base | conv_args, "Conv2DTranspose": base | conv_args | {"output_padding"},
    "MaxPooling2D": base | {"pool_size", "strides", "padding", "data_format"},
    "Flatten": base | {"data_format"}, "Reshape": base | {"target_shape"},
    "Dense": base | {"units", "activation", "use_bias"} | reg("kernel", "bias"),
    "Dropout": base | {"rate", "noise_shape", "seed"}, "LeakyReLU": base | {"alpha"},
    "Embedding": base | {"input_dim", "output_dim", "mask_zero", "input_length", "sparse"} |
                 reg("embeddings"),
    "LSTM": base | {"units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
                    "dropout", "recurrent_dropout", "return_sequences", "return_state",
                    "go_backwards", "stateful", "time_major", "unroll"} |
            reg("kernel", "recurrent", "bias"),
    "BatchNormalization": base | {"axis", "momentum", "epsilon", "center", "scale"} |
                          reg("beta", "gamma") | {"moving_mean_initializer",
                                                  "moving_variance_initializer"},
}
for g in got:
    extra = set(g["config"]) - accepts[g["class_name"]]
    expect(not extra, f"layer {g['config']['name']}: {g['class_name']} takes no {sorted(extra)}")

# training_config: the checkpoint's optimizer of the part, under Keras's names
part = {"generator": "", "discriminator": "optimizer_2/"}.get(model, "")
og = c["pstrain/" + part] if part else c["pstrain"]
oc = tc["optimizer_config"]
kind = og.attrs["optimizer"].decode()
expect(oc["config"]["name"] == {"adam": "Adam", "rmsprop": "RMSprop"}[kind], f"optimizer {oc}")
expect(oc["config"]["learning_rate"] == float(og.attrs["lr"]), f"lr {oc['config']['learning_rate']}")
if kind == "adam":
    expect(oc["config"]["beta_1"] == 0.9 and oc["config"]["beta_2"] == 0.999 and
           oc["config"]["epsilon"] == 1e-07, f"adam {oc}")
elif og.attrs["decay"] > 0:
    # the legacy RMSprop: rho a float32 variable (_set_hyper); from_config calls cls(**config),
    # whose OptimizerV2.__init__ takes no kwarg but clipnorm, clipvalue, lr, decay,
    # global_clipnorm (is_legacy_optimizer among the refused)
    legacy = {"name", "learning_rate", "rho", "momentum", "epsilon", "centered", "clipnorm",
              "clipvalue", "lr", "decay", "global_clipnorm"}
    expect(oc["class_name"] == "RMSprop" and set(oc["config"]) <= legacy,
           f"legacy rmsprop keys the constructor refuses: {set(oc['config']) - legacy}")
    expect(oc["config"]["rho"] == float(og.attrs["rho"]) and
           oc["config"].get("clipvalue") == float(og.attrs["clipvalue"]) and
           oc["config"]["decay"] == float(str(og.attrs["decay"])), f"legacy rmsprop {oc}")
else:
    expect(oc["class_name"] == "Custom>RMSprop" and
           oc["config"]["is_legacy_optimizer"] is False and
           oc["config"]["rho"] == float(str(og.attrs["rho"])) and
           oc["config"].get("clipvalue") == float(og.attrs["clipvalue"]), f"rmsprop {oc}")
loss = tc["loss"]
if model in ("generator", "discriminator"):
    expect(loss["class_name"] == "BinaryCrossentropy" and loss["config"]["from_logits"], f"{loss}")
else:
    expect(loss == ("categorical_crossentropy" if model == "mnist_cnn" else "binary_crossentropy"),
           f"loss {loss}")
    expect(tc["metrics"][0][0]["config"]["name"] == "accuracy", f"metrics {tc['metrics']}")

# model_weights/: layer_names as the config's, each weight the checkpoint's, bit for bit
mw = f["model_weights"]
names = [n.decode() for n in mw.attrs["layer_names"]]
expect(names == [cfg["name"] for _, cfg in layers], f"layer_names {names}")
expect(mw.attrs["keras_version"] == b"2.13.1" and mw.attrs["backend"] == b"tensorflow", "mw attrs")
expect(len(mw["top_level_model_weights"].attrs["weight_names"]) == 0, "top-level weights")
lay = {n.decode(): int(o) for n, o in zip(c["pstrain/layout/names"][:], c["pstrain/layout/offsets"][:])}
ema_v = c["pstrain/ema"][:] if ema else None
count = 0
for n in names:
    wn = [w.decode() for w in mw[n].attrs["weight_names"]]
    expect(wn == [w.decode() for w in c[n].attrs["weight_names"]], f"{n}: weight_names {wn}")
    for w in wn:
        a = mw[n][w][()]
        expect(a.dtype == np.float32, f"{n}/{w}: dtype {a.dtype}")
        ref = c[n][w][()]
        if ema:  # the generator's moving average: its floats at the tensor's offset
            off = lay[w[:-2]]
            ref = ema_v[off:off + ref.size].reshape(ref.shape)
        expect(a.shape == ref.shape and np.array_equal(a, ref), f"{n}/{w}: not the checkpoint's")
        count += 1
expect(count > 0, "no weights")
print(f"PASS: {path}: {len(names)} layers, {count} weights equal the checkpoint's"
      f"{' moving average' if ema else ''}; model_config and training_config parse")
PY
ckpt() { echo "$tmp/$1/$(cat "$tmp/$1/latest")"; }
$py "$tmp/check.py" "$(ckpt cnn)" "$tmp/out/cnn.h5" mnist_cnn || fail "mnist_cnn export"
$py "$tmp/check.py" "$(ckpt imdb)" "$tmp/out/imdb.h5" imdb_lstm || fail "imdb_lstm export"
$py "$tmp/check.py" "$(ckpt gan)" "$tmp/out/gan-generator.h5" generator ema || fail "generator"
$py "$tmp/check.py" "$(ckpt gan)" "$tmp/out/gan-discriminator.h5" discriminator ||
    fail "discriminator"
$py "$tmp/check.py" "$(ckpt gan)" "$tmp/out/live-generator.h5" generator || fail "live generator"

# --- train --init-from ----------------------------------------------------------------------
# A step that cannot move a weight: RMSprop with every gradient element clipped to the
# smallest normal float32 (1.2e-38): its square is 0, and lr * 1.2e-38 underflows to 0 before
# the division, so each update is exactly 0, whatever the weight (0 included) and the
# gradient, with denormals flushed (as pstrain runs) or not. What such a run ends with is
# what it started from, bit for bit.
still=(--optimizer rmsprop --lr 1e-12 --clipvalue 1.2e-38 --max-steps 1)
# same CKPT DUMP [skip-moving]: the dumped flat vector equals the checkpoint's weights
same() {
    $py - "$@" <<'PY'
import sys, h5py, numpy as np
c = h5py.File(sys.argv[1], "r")
w = np.fromfile(sys.argv[2], dtype="<f4")
skip = len(sys.argv) > 3
bad = []
for n, o in zip(c["pstrain/layout/names"][:], c["pstrain/layout/offsets"][:]):
    n = n.decode()
    if skip and "moving_" in n:  # BatchNormalization's statistics move in a training forward
        continue
    ref = c[n.split("/")[0]][n + ":0"][()].ravel()
    if not np.array_equal(ref, w[int(o):int(o) + ref.size]):
        bad.append(n)
print("differ:", bad[:3]) if bad else None
sys.exit(1 if bad else 0)
PY
}
run "$tmp/i1.log" "$pstrain" train --model mnist_cnn --init-from "$tmp/out/cnn.h5" "${still[@]}" \
    "${common[@]}" --dump-weights "$tmp/i1.bin"
grep -q "^--init-from .*: the weights are the file's; the optimizer starts fresh" "$tmp/i1.log" ||
    { cat "$tmp/i1.log"; fail "no --init-from line"; }
same "$(ckpt cnn)" "$tmp/i1.bin" || fail "init-from cnn.h5: the run did not start from its weights"
echo "PASS: train --init-from cnn.h5 starts from the exported weights, bit for bit"
# the check can fail: the same run without --init-from starts elsewhere
run "$tmp/i0.log" "$pstrain" train --model mnist_cnn "${still[@]}" "${common[@]}" \
    --dump-weights "$tmp/i0.bin"
! same "$(ckpt cnn)" "$tmp/i0.bin" >/dev/null || fail "the check cannot tell a fresh run"
echo "PASS: without --init-from the same run's weights differ (the check can fail)"

# as a job: the servers (2, each shard also on the other) start from the file's weights, and
# both workers pull them
mpirun -np 4 --oversubscribe --bind-to none -x OPENBLAS_NUM_THREADS=1 \
    -x ASAN_OPTIONS=detect_leaks=0 "$pstrain" train \
    --model mnist_cnn --init-from "$tmp/out/cnn.h5" "${still[@]}" "${common[@]}" --servers 2 \
    --replicas 1 --bind 127.0.0.1 --advertise 127.0.0.1 --dump-weights "$tmp/j.bin" >"$tmp/j.log" 2>&1 ||
    { cat "$tmp/j.log"; fail "job with --init-from"; }
same "$(ckpt cnn)" "$tmp/j.bin" || fail "job: the servers did not start from the file's weights"
echo "PASS: a job (mpirun, 2 servers with replicas + 2 workers) with --init-from starts from the file's weights"

# a weights file as Keras's own h5py calls write it (superblock 0, contiguous datasets)
$py - "$(ckpt cnn)" "$tmp/keras_weights.h5" <<'PY'
import sys, h5py, numpy as np
c, f = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "w")
names = list(c.attrs["layer_names"])
f.attrs["layer_names"] = np.asarray(names)
f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.13.1"
for n in sorted(names):
    g = f.create_group(n.decode())
    wn = list(c[n].attrs["weight_names"])
    g.attrs["weight_names"] = np.asarray(wn) if wn else np.asarray([])
    for w in wn:
        v = c[n][w][()]
        g.create_dataset(w.decode(), v.shape, dtype=v.dtype)[...] = v
PY
run "$tmp/k.log" "$pstrain" train --model mnist_cnn --init-from "$tmp/keras_weights.h5" \
    "${still[@]}" "${common[@]}" --dump-weights "$tmp/k.bin"
same "$(ckpt cnn)" "$tmp/k.bin" || fail "init-from a Keras-written weights file"
echo "PASS: train --init-from a weights file as Keras's save_weights writes it"

# a GAN: the generator's file, then the discriminator's (live weights: the checkpoint's)
gstill=(--gen-optim rmsprop:lr=1e-12,clipvalue=1.2e-38 --disc-optim rmsprop:lr=1e-12,clipvalue=1.2e-38
    --max-steps 1 --batch 8 --ema-decay 0)
run "$tmp/g.log" "$pstrain" train --model mnist_gan \
    --init-from "$tmp/out/live-generator.h5,$tmp/out/live-discriminator.h5" "${gstill[@]}" \
    "${common[@]}" --dump-weights "$tmp/g.bin"
same "$(ckpt gan)" "$tmp/g.bin" skip || fail "init-from the GAN's two files"
echo "PASS: mnist_gan --init-from GENERATOR.h5,DISCRIMINATOR.h5 starts from their weights"

# refused: one line naming the layer, status 2
refused() { # refused WHAT EXPECTED-LINE CMD...
    local what=$1 line=$2 rc=0
    shift 2
    "$@" >"$tmp/r.log" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || { cat "$tmp/r.log"; fail "$what: status $rc, expected 2"; }
    [[ $(wc -l <"$tmp/r.log") -eq 1 ]] || { cat "$tmp/r.log"; fail "$what: not one line"; }
    grep -qF -- "$line" "$tmp/r.log" || { cat "$tmp/r.log"; fail "$what: expected '$line'"; }
    echo "PASS: $what: $(cat "$tmp/r.log")"
}
refused "imdb_lstm's file into mnist_cnn" \
    "$tmp/out/imdb.h5: layer conv2d: 2 weights expected, found 1 (file layer embedding)" \
    "$pstrain" train --model mnist_cnn --init-from "$tmp/out/imdb.h5" "${common[@]}"
cp "$tmp/out/cnn.h5" "$tmp/edited.h5"
$py - "$tmp/edited.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r+")
g = f["model_weights/conv2d_1/conv2d_1"]
del g["kernel:0"]
g.create_dataset("kernel:0", data=np.zeros((3, 3, 16, 64), np.float32))
PY
refused "an h5py-edited kernel shape" \
    "$tmp/edited.h5: layer conv2d_1: kernel shape (3, 3, 32, 64) expected, found (3, 3, 16, 64)" \
    "$pstrain" train --model mnist_cnn --init-from "$tmp/edited.h5" "${common[@]}"
refused "the generator's file alone" "layer conv2d: missing" \
    "$pstrain" train --model mnist_gan --init-from "$tmp/out/gan-generator.h5" "${common[@]}"
refused "not an HDF5 file" "$tmp/cnn/latest: not an HDF5 file" \
    "$pstrain" train --model mnist_cnn --init-from "$tmp/cnn/latest" "${common[@]}"
mkfifo "$tmp/fifo.h5"
refused "a FIFO" "$tmp/fifo.h5: expected a regular file, found a FIFO" \
    timeout 20 "$pstrain" train --model mnist_cnn --init-from "$tmp/fifo.h5" "${common[@]}"
refused "a missing file" "$tmp/none.h5: cannot open" \
    "$pstrain" train --model mnist_cnn --init-from "$tmp/none.h5" "${common[@]}"
refused "--init-from with --resume FILE" "--init-from: not with --resume" \
    "$pstrain" train --model mnist_cnn --init-from "$tmp/out/cnn.h5" --resume "$(ckpt cnn)"
refused "export into a missing directory" "$tmp/nodir/x.h5: cannot create" \
    "$pstrain" export "$tmp/cnn" --keras "$tmp/nodir/x.h5"
refused "export of a file that is not a checkpoint" "$tmp/out/cnn.h5" \
    "$pstrain" export "$tmp/out/cnn.h5" --keras "$tmp/out/again.h5"
# the dry run checks the files a fresh start would read
rc=0
"$pstrain" train --model mnist_cnn --init-from "$tmp/out/imdb.h5" --dry-run "${common[@]}" \
    >"$tmp/dry.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] && grep -qF "layer conv2d: 2 weights expected" "$tmp/dry.log" ||
    { cat "$tmp/dry.log"; fail "--dry-run with a mismatched --init-from: status $rc"; }
echo "PASS: train --dry-run refuses the mismatched --init-from file"
echo "PASS: test_keras_export"
