#!/usr/bin/env python3
"""Trajectory fixtures of the original system (the T5 branch of BARTNER): 30 optimizer steps of its
own fastNLP Trainer on fixed batches, for full fine-tuning and adapters on a relu and a gated-gelu
backbone, written as small test data for genner's SeedCompat (tests/test_seed.cpp, [seed]).

Run by hand, never by CI:

    /usr/bin/python3 tools/seed_trajectory.py [--out tests/data/seed/trajectory]

It needs the original implementation set up as ../shared/original/README.md describes
(`bash ../shared/original/setup.sh ...` extracts the original's code at its exact revisions into
$GENNER_ORIGINAL_DIR, default ~/.cache/genner-original) and imports the run-time shims of
../shared/original/seed_reference.py ($GENNER_ORIGINAL_HARNESS); no code of the original is copied.

What runs (all on CPU, float32, one thread):
- backbone: a small T5 (vocabulary 32128, d_model 32, d_ff 64, 4 heads x 8, 2+2 layers; relu and tied,
  or gated-gelu and untied; dropout 0) whose weights are a counter-based hash of (name, index), so the
  test rebuilds them bit for bit instead of reading a checkpoint (see hash_init below);
- the original's data pipe on CoNLL-2003 test sentences 0..39 (fixed mapping), batches of 4 in file
  order (fastNLP's SequentialSampler and padding), 3 epochs = 30 optimizer steps;
- the original's build_model (train_t5.py's arguments; adapter size 16; seeds 4321 as seed_reference.py),
  train_t5.py's parameter groups (copied there verbatim), torch.optim.AdamW, fastNLP's
  GradientClipCallback(clip_value=0.1, clip_type='value') and WarmupCallback(warmup, 'linear')
  (model/callbacks.py's WarmupCallback only adds an 'inverse_square' schedule to it and imports fitlog),
  the original's T5Seq2SeqLoss; every nn.Dropout set to p=0 and the decoder's random truncation off
  through its own flag (truncate_decoded=False).

Written per case <base>-<mode>/: trajectory.json (settings, groups, loss and learning rates per step,
batch order), batches.safetensors (the padded batches the Trainer fed), initial.safetensors (every
trainable tensor that is not a backbone weight, and the embedding rows build_model changed) and
final.safetensors (every trainable tensor after the last step; of the embedding table only the rows
that received a gradient: the others only decay, which the script checks bit for bit).
"""
import argparse
import datetime
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS = os.environ.get("GENNER_ORIGINAL_HARNESS", os.path.join(REPO, "..", "shared", "original"))
WORK = os.environ.get("GENNER_ORIGINAL_DIR", os.path.join(os.path.expanduser("~"), ".cache", "genner-original"))


def require_setup():
    missing = [p for p in (os.path.join(HARNESS, "seed_reference.py"), os.path.join(WORK, "vendor", "bartner-seed"),
                           os.path.join(WORK, "vendor", "fastNLP-0.6.0")) if not os.path.exists(p)]
    if missing:
        sys.exit("seed_trajectory.py: the original implementation is not set up (missing: " + ", ".join(missing) +
                 ").\nSet it up as ../shared/original/README.md says: bash ../shared/original/setup.sh BARTNER_GIT "
                 "FASTNLP_GIT NEWT5_GIT HF_HUB_GIT SAFETENSORS_GIT (git directories of yuq-1s/BARTNER, "
                 "fastnlp/fastNLP, a clone with transformers v4.30.2, huggingface/huggingface_hub, "
                 "huggingface/safetensors), or point GENNER_ORIGINAL_DIR / GENNER_ORIGINAL_HARNESS at an existing "
                 "set-up. Run it with /usr/bin/python3.")


require_setup()
sys.path.insert(0, HARNESS)
import seed_reference as sr  # noqa: E402  (the harness: vendored imports and run-time shims)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from fastNLP import Trainer, SequentialSampler, GradientClipCallback, WarmupCallback, Callback  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

BASES = {
    "relu": dict(vocab_size=32128, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2,
                 feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0, decoder_start_token_id=0),
    "gated": dict(vocab_size=32128, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2,
                  feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
                  decoder_start_token_id=0),
}
MODES = ["finetune", "adapter"]
SENTENCES = 40       # CoNLL-2003 test 0..39
BATCH = 4            # 10 batches per epoch
EPOCHS = 3           # 30 optimizer steps
LR = {"finetune": 4e-5, "adapter": 1e-3}  # 4e-5: ACE04's published LR; 2e-4 (train_t5.py's default) fails the conditioning check on the gated backbone
WARMUP = 0.1         # train_t5.py uses 0.01 (0.1 for en_ace05); 0.1 puts two of 30 updates in the warm-up
PERTURBATION = 1e-7  # conditioning check: relative scaling of the initial backbone
CONDITIONING_LIMIT = 1e-6  # a tenth of the test's 1e-5
CLIP = 0.1           # train_t5.py: GradientClipCallback(clip_value=0.1, clip_type='value')

MASK64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def hash_uniform(name, n):
    """u[i] in [0, 1), multiples of 2^-24: splitmix64's finaliser of fnv1a64(name) + (i+1)*golden."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) * (2.0 ** -24)


def hash_init(name, shape):
    """The backbone's weights: layer norms U(0.5, 1.5); the relative bias and the embedding table std 1;
    a Linear weight [out, in] std in^-0.5; all uniform (centred, half-width std*sqrt(3)), in float32."""
    n = int(np.prod(shape))
    u = hash_uniform(name, n)
    if name.endswith("layer_norm.weight"):
        v = 1.0 + (2.0 * u - 1.0) * 0.5
    else:
        std = 1.0 if (name == "shared.weight" or name.endswith("relative_attention_bias.weight")) else shape[1] ** -0.5
        v = (2.0 * u - 1.0) * (std * np.sqrt(3.0))
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def make_checkpoint(base, folder, scale=1.0):
    cfg = transformers.T5Config(**BASES[base])
    m = transformers.T5Model(cfg)
    names = []
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(hash_init(name, tuple(p.shape)) * scale)
            names.append(name)
    m.save_pretrained(folder, safe_serialization=True)
    os.symlink(sr.SPIECE, os.path.join(folder, "spiece.model"))
    return names, m.shared.weight.detach().clone()


class Record(Callback):
    def __init__(self):
        super().__init__()
        self.loss, self.lrs, self.batches, self.order = [], [], [], []

    def on_batch_begin(self, batch_x, batch_y, indices):
        key = tuple(int(i) for i in indices)
        if key not in [b[0] for b in self.batches]:
            self.batches.append((key, {k: v.clone() for k, v in list(batch_x.items()) + list(batch_y.items())
                                       if torch.is_tensor(v)}))
        self.order.append([b[0] for b in self.batches].index(key))

    def on_backward_begin(self, loss):
        self.loss.append(float(loss.detach()))

    def on_step_end(self):
        self.lrs.append([float(g["lr"]) for g in self.optimizer.param_groups])


def run_case(base, mode, ckpt, table0, backbone_names, pipe, ds, label_ids):
    """Builds and trains one case; returns (trajectory.json's content, {file name: tensors})."""
    model = sr.build_seed_model(base, mode, ckpt, pipe.tokenizer, label_ids)
    for mod in model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    model.seq2seq_model.decoder.truncate_decoded = False
    named = dict(model.named_parameters())
    groups = sr.seed_param_groups(model, mode, lr=LR[mode])
    group_names = [[n for n, p in named.items() if any(p is q for q in g["params"])] for g in groups]
    trainable = [n for n, p in named.items() if p.requires_grad]
    embed_name = [n for n in named if n.endswith("embed_tokens.weight")][0]
    initial = {n: named[n].detach().clone() for n in trainable if n != embed_name and "t5_encoder" not in n}
    for n, p in named.items():  # added modules that do not train still shape the forward pass
        if ("adapter" in n or "encoder_mlp" in n) and n not in initial:
            initial[n] = p.detach().clone()
    table = named[embed_name].detach()
    changed = (table != table0).any(1).nonzero().flatten()
    initial["embed.rows"] = changed.clone()
    initial["embed.values"] = table[changed].clone()
    start_table = table.clone()
    optimizer = torch.optim.AdamW(groups)
    rec = Record()
    trainer = Trainer(train_data=ds, model=model, optimizer=optimizer, loss=sr.seed_losses.T5Seq2SeqLoss(),
                      batch_size=BATCH, sampler=SequentialSampler(), drop_last=False, update_every=1, num_workers=0,
                      n_epochs=EPOCHS, print_every=10 ** 6, dev_data=None, metrics=None, save_path=None,
                      use_tqdm=False, device="cpu", check_code_level=-1,
                      callbacks=[GradientClipCallback(clip_value=CLIP, clip_type="value"),
                                 WarmupCallback(warmup=WARMUP, schedule="linear"), rec])
    trainer.train(load_best_model=False)
    steps = len(rec.loss)
    assert steps == EPOCHS * (SENTENCES // BATCH), steps
    final = {n: named[n].detach().clone() for n in trainable if n != embed_name}
    if embed_name in trainable:
        # Rows without any gradient only decay: p *= 1 - lr_k * weight_decay, as AdamW does it.
        wd = [g["weight_decay"] for g, names in zip(groups, group_names) if embed_name in names][0]
        gi = [i for i, names in enumerate(group_names) if embed_name in names][0]
        decayed = start_table.clone()
        for lrs in rec.lrs:
            decayed.mul_(1 - lrs[gi] * wd)
        after = named[embed_name].detach()
        touched = (after != decayed).any(1).nonzero().flatten()
        rest = torch.ones(after.size(0), dtype=torch.bool)
        rest[touched] = False
        assert torch.equal(after[rest], decayed[rest])
        final["embed.touched_rows"] = touched.clone()
        final["embed.touched_values"] = after[touched].clone()
    batches = {}
    for b, (_, tensors) in enumerate(rec.batches):
        for k in ("src_tokens", "src_seq_len", "tgt_tokens", "tgt_seq_len"):
            batches[f"batch.{b}.{k}"] = tensors[k].to(torch.int64).contiguous()
    meta = {
        "base": base, "mode": mode, "config": BASES[base], "backbone_names": backbone_names,
        "label_ids": label_ids, "mapping2id": dict(pipe.mapping2id), "adapter_size": sr.ADAPTER_SIZE, "use_encoder_mlp": sr.USE_ENCODER_MLP,
        "sentences": f"conll2003 test 0..{SENTENCES - 1}", "batch_size": BATCH, "epochs": EPOCHS, "steps": steps,
        "optimizer": {"name": "torch.optim.AdamW", "betas": list(optimizer.defaults["betas"]),
                      "eps": optimizer.defaults["eps"], "amsgrad": optimizer.defaults["amsgrad"]},
        "groups": [{"lr": LR[mode], "weight_decay": g["weight_decay"], "params": names}
                   for g, names in zip(groups, group_names)],
        "trainable": trainable, "embedding": embed_name,
        "schedule": {"name": "fastNLP WarmupCallback linear", "warmup": WARMUP, "total_steps": steps},
        "clip_value": CLIP, "loss": rec.loss, "lr": rec.lrs, "batch_order": rec.order,
    }
    files = {"batches.safetensors": batches, "initial.safetensors": initial, "final.safetensors": final}
    return meta, files


def relative(a, b):
    """support.hpp's rule: max |a - b| / max(1, max |b|)."""
    return float((a.double() - b.double()).abs().max()) / max(1.0, float(b.double().abs().max()))


def deviation(meta, files, meta_p, files_p):
    """Worst relative change of the losses and final tensors between a run and its perturbed twin."""
    worst = (relative(torch.tensor(meta_p["loss"]), torch.tensor(meta["loss"])), "loss")
    fa, fb = files["final.safetensors"], files_p["final.safetensors"]
    for k in fa:
        if k == "embed.touched_rows":
            continue
        if k == "embed.touched_values":
            # rows touched in one run only would be a different trajectory altogether
            assert torch.equal(fa["embed.touched_rows"], fb["embed.touched_rows"])
        worst = max(worst, (relative(fb[k], fa[k]), k))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "seed", "trajectory"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    pipe, bundle = sr.conll_test_pipe()
    ds = bundle.get_dataset("test")[0:SENTENCES]
    label_ids = list(pipe.mapping2id.values())
    for base in BASES:
        with tempfile.TemporaryDirectory() as ckpt, tempfile.TemporaryDirectory() as ckpt_p:
            backbone_names, table0 = make_checkpoint(base, ckpt)
            _, table0_p = make_checkpoint(base, ckpt_p, scale=1 + PERTURBATION)
            for mode in MODES:
                meta, files = run_case(base, mode, ckpt, table0, backbone_names, pipe, ds, label_ids)
                # Conditioning: the same run from weights scaled by 1 + 1e-7 must end within a tenth of
                # the test's tolerance, or float rounding alone could move a tensor past it (Adam turns
                # a gradient element at rounding level into updates of the size of the LR).
                meta_p, files_p = run_case(base, mode, ckpt_p, table0_p, backbone_names, pipe, ds, label_ids)
                worst, where = deviation(meta, files, meta_p, files_p)
                meta["conditioning"] = {"perturbation": PERTURBATION, "worst_relative_change": worst,
                                        "where": where, "limit": CONDITIONING_LIMIT}
                name = f"{base}-{mode}"
                if worst > CONDITIONING_LIMIT:
                    sys.exit(f"{name}: scaling the initial weights by 1 + {PERTURBATION} moves '{where}' by {worst:.2e} "
                             f"relative (limit {CONDITIONING_LIMIT}); this trajectory is too ill-conditioned to be a "
                             "fixture; change the learning rate or the sentences")
                folder = os.path.join(args.out, name)
                os.makedirs(folder, exist_ok=True)
                for file, tensors in files.items():
                    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, file))
                with open(os.path.join(folder, "trajectory.json"), "w") as f:
                    json.dump(meta, f, indent=1)
                print(f"{name}: {meta['steps']} steps, loss {meta['loss'][0]:.6f} -> {meta['loss'][-1]:.6f}, "
                      f"{len(meta['trainable'])} trainable tensors, conditioning {worst:.2e} ({where})", flush=True)
    provenance = {
        "command": "/usr/bin/python3 tools/seed_trajectory.py" + ("" if args.out.endswith(os.path.join(
            "tests", "data", "seed", "trajectory")) else f" --out {args.out}"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "original": {"BARTNER": sr.SEED_COMMIT, "fastNLP": sr.FASTNLP_COMMIT, "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__},
    }
    with open(os.path.join(args.out, "provenance.json"), "w") as f:
        json.dump(provenance, f, indent=1)


if __name__ == "__main__":
    main()
