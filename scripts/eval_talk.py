"""Evaluate a talk model on held-out material and on real human speech.

    OMP_WAIT_POLICY=PASSIVE python scripts/eval_talk.py [--checkpoint talk/assets/default_talk.safetensors]

1. Lip sync against the corpus ground truth on the held-out split (voices and
   sentences training never saw, plus real recordings of held-out speakers):
   LVE / FDD / MOD on the default head's vertices, for the model and two baselines
   computed in the same run — a closed mouth (neutral motion) and a jaw driven by
   the audio energy (gain, offset and lag fitted by least squares on training
   clips). Rows: ``model`` (no style clip: the model's neutral style),
   ``model+style`` (a style clip from another held-out utterance of the same
   style), ``vqvae`` (the ground truth through the VQ-VAE alone: the bound the
   generator works under), ``energy``, ``closed``. LVE/FDD/MOD are computed on the
   face in head coordinates (expression + jaw; the global head rotation left out,
   as lip-sync metrics are); ``LVE_pose``/``FDD_pose`` apply the head rotation too.
2. Real human speech (held-out recordings: codec2, alsa, asterisk prompts
   training does not hear): mouth closed in pauses (VAD), opening in voiced
   speech, jaw/envelope correlation, head-pose motion, blinks; and how much two
   style clips change the motion.
3. Renders the default head speaking real recordings (mp4, PNG frames, a contact sheet).

The last line reads ``LVE model: X; LVE energy: Y; LVE closed: Z; energy/model: R×``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from splattalk.atomic import write_json
from splattalk.talk.corpus.layout import DEFAULT_CORPUS, EXPR_NAMES, JAW, ROTATION, load_clip, read_manifest
from splattalk.talk.corpus.speech_checks import frame_activity, frame_envelope, mouth_closed, pause_frames

# mediapipe face-mesh inner-lip landmarks (= default-head vertices), upper/lower pairs for MOD
UPPER_LIP = (13, 82, 81, 80, 191, 312, 311, 310, 415)
LOWER_LIP = (14, 87, 178, 88, 95, 317, 402, 318, 324)
BLINK = (EXPR_NAMES.index("blink_left"), EXPR_NAMES.index("blink_right"))


@dataclass(frozen=True)
class EvalConfig:
    """Held-out lip-sync metrics, real-speech checks, style difference and a rendered clip."""

    corpus: Path = DEFAULT_CORPUS
    """Corpus folder (held-out split evaluated, training split fits the energy baseline)."""
    checkpoint: Path | None = None
    """Talk model (.safetensors); default: talk/assets/default_talk.safetensors."""
    styles: Path = Path(__file__).resolve().parents[1] / "talk" / "assets" / "styles"
    """Style clips folder (for the style-difference check)."""
    style_pair: tuple[str, str] = ("calm", "lively")
    """The two style clips compared."""
    out: Path = Path("runs/eval_talk")
    """Where the table (JSON), the rendered clip and frames go."""
    fit_clips: int = 400
    """Training clips used to fit the energy baseline."""
    max_clips: int | None = None
    """Evaluate at most this many held-out clips (evenly spread; None: all)."""
    render: bool = True
    """Render the default head speaking a real recording."""
    render_size: int = 320
    """Rendered frame size (pixels)."""
    threads: int = 1
    """Torch CPU threads."""


# ---- motion → vertices → metrics -------------------------------------------------------------


class Head:
    def __init__(self):
        from splattalk.head.default import load_default_head

        self.model = load_default_head()
        self.template = self.vertices(np.zeros((1, len(EXPR_NAMES) + 6), np.float32))[0]
        self.regions = {
            "lips": self.model.regions["lips"],
            "upper_face": self.model.regions["upper_face"],
            "upper_lip": np.array(UPPER_LIP),
            "lower_lip": np.array(LOWER_LIP),
        }

    @torch.no_grad()
    def vertices(self, motion: np.ndarray, pose: bool = True) -> np.ndarray:
        """``motion: [T, 32]`` → vertices ``[T, V, 3]`` (head rotation dropped when ``pose`` is False)."""
        m = torch.as_tensor(np.asarray(motion, np.float32))
        rot = m[:, ROTATION] if pose else torch.zeros_like(m[:, ROTATION])
        out = [
            self.model(
                expr=m[i : i + 256, : len(EXPR_NAMES)], rotation=rot[i : i + 256], jaw=m[i : i + 256, JAW]
            ).vertices
            for i in range(0, len(m), 256)
        ]
        return torch.cat(out).numpy()

    def metrics(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        from splattalk.talk.metrics import lipsync_metrics

        row = lipsync_metrics(self.vertices(pred, False), self.vertices(gt, False), self.template, self.regions)
        posed = lipsync_metrics(self.vertices(pred), self.vertices(gt), self.template, self.regions)
        row.update({"LVE_pose": posed["LVE"], "FDD_pose": posed["FDD"]})
        return row


# ---- the energy baseline -------------------------------------------------------------------


def envelope_features(audio: np.ndarray, frames: int) -> np.ndarray:
    """[T, 3] per-frame features: 1, level and √level, the RMS envelope normalised by the clip's 95th percentile."""
    from scipy.ndimage import gaussian_filter1d

    env = gaussian_filter1d(frame_envelope(audio, frames), 1.0)
    env = env / max(np.percentile(env, 95), 1e-6)
    return np.stack([np.ones_like(env), env, np.sqrt(np.clip(env, 0, None))], axis=1)


def shift(x: np.ndarray, lag: int) -> np.ndarray:
    """``x`` delayed by ``lag`` frames (negative: advanced), edges held."""
    idx = np.clip(np.arange(len(x)) - lag, 0, len(x) - 1)
    return x[idx]


def fit_energy_baseline(corpus: Path, clips: int) -> dict:
    """Least-squares jaw ≈ w · features(audio shifted by lag), lag chosen on the training clips."""
    records = read_manifest(corpus, "train")
    pick = np.linspace(0, len(records) - 1, min(clips, len(records))).astype(int)
    data = []
    for i in pick:
        c = load_clip(corpus, records[i])
        data.append((envelope_features(c.audio, len(c.motion)), c.motion[:, JAW.start]))
    best = None
    for lag in range(-6, 7):
        X = np.concatenate([shift(f, lag) for f, _ in data])
        y = np.concatenate([j for _, j in data])
        w, *_ = np.linalg.lstsq(X, y, rcond=None)
        err = float(np.mean((np.clip(X @ w, 0, None) - y) ** 2))
        if best is None or err < best["mse"]:
            best = {"lag": lag, "weights": w.tolist(), "mse": err}
    return best


def energy_motion(audio: np.ndarray, frames: int, fit: dict) -> np.ndarray:
    motion = np.zeros((frames, len(EXPR_NAMES) + 6), np.float32)
    motion[:, JAW.start] = np.clip(
        shift(envelope_features(audio, frames), fit["lag"]) @ np.asarray(fit["weights"]), 0, None
    )
    return motion


# ---- real-speech figures ------------------------------------------------------------------


def speech_figures(audio: np.ndarray, motion: np.ndarray) -> dict[str, float]:
    """Pause closure, jaw in voiced speech vs pauses, jaw/envelope correlation, head motion, blinks."""
    from splattalk.talk.corpus.speech_checks import jaw_envelope_correlation

    T = len(motion)
    pauses, active = pause_frames(audio, T), frame_activity(audio, T)
    closed = mouth_closed(motion)
    jaw = motion[:, JAW.start]
    rot_deg = np.degrees(motion[:, ROTATION])
    blink = motion[:, BLINK].mean(1)
    onsets = int(np.sum((blink[1:] > 0.5) & (blink[:-1] <= 0.5)))
    return {
        "frames": T,
        "pause_frames": int(pauses.sum()),
        "closed_in_pauses": int((pauses & closed).sum()),
        "jaw_voiced_rad": float(jaw[active].mean()) if active.any() else float("nan"),
        "jaw_pause_rad": float(jaw[pauses].mean()) if pauses.any() else float("nan"),
        "jaw_env_corr": jaw_envelope_correlation(audio, motion),
        "head_rot_std_deg": float(rot_deg.std(0).mean()),
        "blinks": onsets,
    }


def summarize_speech(rows: list[dict]) -> dict[str, float]:
    frames = sum(r["frames"] for r in rows)
    pauses = sum(r["pause_frames"] for r in rows)
    w = np.array([r["frames"] for r in rows], float)

    def avg(key):
        v = np.array([r[key] for r in rows], float)
        ok = np.isfinite(v)
        return float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else float("nan")

    return {
        "pause_closure": sum(r["closed_in_pauses"] for r in rows) / max(1, pauses),
        "jaw_voiced_rad": avg("jaw_voiced_rad"),
        "jaw_pause_rad": avg("jaw_pause_rad"),
        "jaw_env_corr": avg("jaw_env_corr"),
        "head_rot_std_deg": avg("head_rot_std_deg"),
        "blinks_per_min": sum(r["blinks"] for r in rows) / (frames / 25 / 60),
    }


# ---- main ------------------------------------------------------------------------------------


def main(cfg: EvalConfig) -> None:
    from tqdm import tqdm

    from splattalk.models import DEFAULT_MODEL
    from splattalk.talk.checkpoint import load_talk_checkpoint
    from splattalk.talk.inference import generate
    from splattalk.talk.style import load_style_clip

    torch.set_num_threads(cfg.threads)
    model = load_talk_checkpoint(cfg.checkpoint or DEFAULT_MODEL)
    head = Head()
    fit = fit_energy_baseline(cfg.corpus, cfg.fit_clips)
    held = read_manifest(cfg.corpus, "heldout")
    if cfg.max_clips is not None and cfg.max_clips < len(held):
        held = [held[i] for i in np.linspace(0, len(held) - 1, cfg.max_clips).astype(int)]
    methods = ("model", "model+style", "vqvae", "energy", "closed")
    style_for = style_clips_by_style(cfg.corpus, model.cfg.style_frames)
    per = {m: [] for m in methods}
    real, motions = [], {}
    for rec in tqdm(held, desc="held-out clips", unit="clip"):
        clip = load_clip(cfg.corpus, rec)
        T = len(clip.motion)
        pred = _fit_length(generate(model, clip.audio), T)
        motions[rec.id] = (clip, pred)
        style = next(seg for cid, seg in style_for[rec.style] if cid != rec.id)
        outs = {
            "model": pred,
            "model+style": _fit_length(generate(model, clip.audio, style=style), T),
            "vqvae": vqvae_reconstruction(model, clip.motion),
            "energy": energy_motion(clip.audio, T, fit),
            "closed": np.zeros_like(clip.motion),
        }
        for m in methods:
            per[m].append((T, rec.source == "recording", head.metrics(outs[m], clip.motion)))
        if rec.source == "recording":
            real.append(rec)
    table = {m: _weighted(per[m]) for m in methods}
    tts_table = {m: _weighted([p for p in per[m] if not p[1]]) for m in methods}

    # real human speech
    speech = {"model": [], "ground truth": [], "energy": []}
    for rec in real:
        clip, pred = motions[rec.id]
        speech["model"].append(speech_figures(clip.audio, pred))
        speech["ground truth"].append(speech_figures(clip.audio, clip.motion))
        speech["energy"].append(speech_figures(clip.audio, energy_motion(clip.audio, len(clip.motion), fit)))
    speech_table = {k: summarize_speech(v) for k, v in speech.items()}
    speech_table["clips"] = {
        "count": len(real),
        "seconds": round(sum(r.duration for r in real), 1),
        "speakers": sorted({r.speaker for r in real}),
    }

    # two style clips on the same real speech
    style_rows = {}
    a_name, b_name = cfg.style_pair
    styles = {
        n: load_style_clip(cfg.styles / f"{n}.npz", model.cfg.motion_dim, model.cfg.style_frames)
        for n in cfg.style_pair
    }
    gen = {n: [generate(model, motions[r.id][0].audio, style=s) for r in real] for n, s in styles.items()}
    for n in cfg.style_pair:
        style_rows[n] = summarize_speech([speech_figures(motions[r.id][0].audio, g) for r, g in zip(real, gen[n])])
    diff = np.concatenate([np.abs(a - b) for a, b in zip(gen[a_name], gen[b_name])]).mean(0)
    style_rows["rot_std_ratio"] = style_rows[b_name]["head_rot_std_deg"] / max(
        style_rows[a_name]["head_rot_std_deg"], 1e-9
    )
    style_rows["mean_abs_diff_rot_deg"] = float(np.degrees(diff[ROTATION]).mean())
    style_rows["mean_abs_diff_expr"] = float(diff[: len(EXPR_NAMES)].mean())

    report = {
        "heldout": table,
        "heldout_tts_only": tts_table,
        "energy_fit": fit,
        "real_speech": speech_table,
        "styles": style_rows,
        "clips": {"heldout": len(held), "real": len(real)},
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_json(cfg.out / "eval.json", report)
    if cfg.render and real:
        report["render"] = render_clip(cfg, model, head, motions, real)
        write_json(cfg.out / "eval.json", report)
    print_report(report)


def style_clips_by_style(corpus: Path, frames: int) -> dict[int, list[tuple[str, np.ndarray]]]:
    """Per style id, the most active stretch of its two longest held-out TTS clips: a clip from *another*
    utterance of the same style is what the model+style row gets (never the evaluated one's own motion)."""
    from splattalk.talk.training.dataset import most_active_segment

    held = [r for r in read_manifest(corpus, "heldout") if r.source != "recording"]
    out: dict[int, list] = {}
    for sid in sorted({r.style for r in held}):
        group = sorted((r for r in held if r.style == sid), key=lambda r: (-r.duration, r.id))[:2]
        out[sid] = [(r.id, most_active_segment(load_clip(corpus, r).motion, frames, JAW.start)[0]) for r in group]
    return out


@torch.no_grad()
def vqvae_reconstruction(model, motion: np.ndarray) -> np.ndarray:
    """The ground truth through the model's VQ-VAE, window by window as inference chains it (an upper bound)."""
    W, T = model.cfg.window, len(motion)
    n = -(-T // W)
    m = torch.from_numpy(np.concatenate([motion, np.repeat(motion[-1:], n * W - T, 0)]))[None]
    prev, out = torch.zeros_like(m[:, :W]), []
    for w in range(n):
        this = m[:, w * W : (w + 1) * W]
        prev_bits, bits = model.basic_vae.encode(prev, this)
        out.append(model.basic_vae.decode(prev_bits, bits)[1][0].numpy())
        prev = this
    return np.concatenate(out)[:T]


def _fit_length(motion: np.ndarray, T: int) -> np.ndarray:
    """The model gives ⌈S/640⌉ frames, the corpus round(S/640): hold or cut the last frame."""
    if len(motion) >= T:
        return motion[:T]
    return np.concatenate([motion, np.repeat(motion[-1:], T - len(motion), 0)])


def _weighted(rows) -> dict[str, float]:
    if not rows:
        return {}
    w = np.array([t for t, _, _ in rows], float)
    keys = rows[0][2].keys()
    return {k: float(sum(r[k] * wi for (_, _, r), wi in zip(rows, w)) / w.sum()) for k in keys}


def render_clip(cfg: EvalConfig, model, head: Head, motions: dict, real: list) -> dict:
    """mp4 of the default head speaking held-out real recordings (joined), plus PNG frames and a contact sheet."""
    import cv2

    from splattalk.camera import focal_from_fov, intrinsics, look_at
    from splattalk.head.default import load_texture
    from splattalk.head.raster import render_mesh
    from splattalk.mp4 import write_mp4

    # real speech of several held-out speakers, joined with short pauses (up to ~12 s)
    picks = sorted(real, key=lambda r: (r.speaker.startswith("asterisk"), r.id))
    gap = np.zeros(int(0.4 * 16000), np.float32)
    parts, used = [], []
    for r in picks:
        if sum(len(p) for p in parts) > 10 * 16000:
            break
        parts += [motions[r.id][0].audio, gap]
        used.append(r.speaker)
    audio = np.concatenate(parts)
    audio = audio[: len(audio) // 640 * 640]
    from splattalk.talk.inference import generate

    motion = generate(model, audio)
    verts = head.vertices(motion)
    m = head.model
    texture, faces, uvs, uv_faces = load_texture(), m.faces_np, m.uvs.numpy(), m.uv_faces.numpy()
    size = cfg.render_size
    K = intrinsics(focal_from_fov(22, size), size, size)
    view = look_at(np.array([0.0, 0.02, 0.62]), np.array([0.0, -0.005, -0.03]))
    frames = []
    for v in verts:
        r = render_mesh(v, faces, view, K, size, size, texture=texture, uvs=uvs, uv_faces=uv_faces, shading=0.5)
        frames.append((r.rgb * 255).astype(np.uint8))
    path = cfg.out / "default_talk_real_speech.mp4"
    write_mp4(path, frames, 25, audio)
    active = frame_activity(audio, len(motion))
    pauses = pause_frames(audio, len(motion))
    later_pauses = np.flatnonzero(pauses & (np.arange(len(motion)) > np.argmax(active)))
    picks = {
        "speech_open": int(np.argmax(np.where(active, motion[:, JAW.start], -1))),
        "pause": int(later_pauses[len(later_pauses) // 2]) if len(later_pauses) else 0,
        "middle": len(motion) // 2,
    }
    sheet = [frames[i] for i in np.linspace(0, len(frames) - 1, 10).astype(int)]
    cv2.imwrite(str(cfg.out / "contact_sheet.png"), np.concatenate(sheet, axis=1)[:, :, ::-1])
    pngs = {}
    for name, i in picks.items():
        p = cfg.out / f"frame_{name}_{i:04d}.png"
        cv2.imwrite(str(p), frames[i][:, :, ::-1])
        pngs[name] = {"file": str(p), "frame": i, "jaw_rad": float(motion[i, JAW.start]), "voice": bool(active[i])}
    return {"speakers": used, "seconds": len(motion) / 25, "mp4": str(path), "frames": pngs}


def print_report(r: dict) -> None:
    print(
        f"\nHeld-out lip sync ({r['clips']['heldout']} clips). LVE/MOD in mm, FDD in 1e-5 m, "
        "on the face in head coordinates"
    )
    print("(global head rotation left out, as lip-sync metrics are defined); *_pose: with the head rotation applied.")
    print(f"{'method':<12}{'LVE':>8}{'FDD':>9}{'MOD':>8}{'LVE_pose':>10}{'FDD_pose':>10}   | LVE TTS-only")
    for m, row in r["heldout"].items():
        print(
            f"{m:<12}{row['LVE']:8.2f}{row['FDD']:9.2f}{row['MOD']:8.2f}{row['LVE_pose']:10.2f}{row['FDD_pose']:10.2f}"
            f"   | {r['heldout_tts_only'][m]['LVE']:.2f}"
        )
    f = r["energy_fit"]
    print(
        f"energy baseline: jaw = {f['weights'][0]:.3f} + {f['weights'][1]:.3f}·env + "
        f"{f['weights'][2]:.3f}·√env, lag {f['lag']} frames"
    )
    s = r["real_speech"]
    print(
        f"\nReal human speech: {s['clips']['count']} held-out recordings, "
        f"{s['clips']['seconds']} s ({', '.join(s['clips']['speakers'])})"
    )
    print(
        f"{'':<14}{'closed in pauses':>17}{'jaw voiced':>11}{'jaw pause':>10}"
        f"{'jaw~env r':>10}{'head std°':>10}{'blinks/min':>11}"
    )
    for k in ("model", "ground truth", "energy"):
        v = s[k]
        print(
            f"{k:<14}{v['pause_closure']:17.1%}{v['jaw_voiced_rad']:11.3f}{v['jaw_pause_rad']:10.3f}{v['jaw_env_corr']:10.2f}{v['head_rot_std_deg']:10.2f}{v['blinks_per_min']:11.1f}"
        )
    st = r["styles"]
    names = [k for k in st if isinstance(st[k], dict)]
    print(
        "\nStyle clips on the same real speech: head-rotation std "
        f"{names[0]} {st[names[0]]['head_rot_std_deg']:.2f}° vs "
        f"{names[1]} {st[names[1]]['head_rot_std_deg']:.2f}° (ratio {st['rot_std_ratio']:.2f}); mean |Δ| rotation "
        f"{st['mean_abs_diff_rot_deg']:.2f}°, expression {st['mean_abs_diff_expr']:.3f}"
    )
    if "render" in r:
        print(
            f"rendered {r['render']['mp4']} ({r['render']['seconds']:.1f} s of real speech: "
            f"{', '.join(r['render']['speakers'])})"
        )
    lm, le, lc = (r["heldout"][m]["LVE"] for m in ("model", "energy", "closed"))
    print(f"LVE model: {lm:.2f}; LVE energy: {le:.2f}; LVE closed: {lc:.2f}; energy/model: {le / lm:.2f}×")


if __name__ == "__main__":
    main(tyro.cli(EvalConfig))
