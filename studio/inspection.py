"""Memorisation check: render samples, find their nearest dataset images, write a browsable report.

    python -m studio.inspection --model BUNDLE --samples 100 --out DIR [--seed S] [--layer both|early|late]

Sample i is keyframe i of the seeded walk (installation.latent.keyframe), rendered by models.render, the
one render path, so any sample can be found again in the live piece with its seed. DIR/index.html is
self-contained (images as data URIs, inline CSS and JS, no network); DIR/report.json holds the same numbers.
A sample counts as "memorised" at a layer when its best similarity exceeds the 95th percentile of the dataset's
own nearest-neighbour similarities (calibration.json): closer to a training image than 95% of training images
are to each other.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from installation.latent import keyframe
from installation.provenance import ProvenanceIndex
from models.bundle import load_bundle
from models.files import write_bytes_atomic, write_json_atomic
from models.manifest import error_lines
from models.render import Renderer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger(__name__)

NEIGHBOURS = 24
MEMORISATION_PERCENTILE = 95
SAMPLE_DISPLAY_MAX = 256


def png_data_uri(image: np.ndarray, max_size: int | None = None) -> str:
    picture = Image.fromarray(np.ascontiguousarray(image, np.uint8))
    if max_size is not None and max(picture.size) > max_size:
        picture = picture.resize((max_size, max_size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_latents(seed: int, count: int, latent_dim: int) -> np.ndarray:
    return np.stack([keyframe(seed, index, latent_dim) for index in range(count)]).astype(np.float32)


def inspect_bundle(bundle_dir, samples: int = 100, seed: int = 0, layers=("early", "late"), k: int = NEIGHBOURS,
                   upscale: bool = True, vgg_weights=None):
    """-> (report dict, sample frames uint8, index). Raises ValueError when the bundle has no index."""
    if not 1 <= samples <= 10000:
        raise ValueError(f"samples {samples} is outside the allowed range 1..10000")
    bundle = load_bundle(bundle_dir)
    index = ProvenanceIndex.load(bundle_dir, bundle.manifest)
    if index is None:
        raise ValueError(f"bundle {bundle_dir} has no provenance index; build one with "
                         f"`python -m training index --model {bundle_dir} --data DATASET`")
    extractor = index.load_extractor(vgg_weights)
    frames = Renderer(bundle).render(sample_latents(seed, samples, bundle.latent_dim), upscale=upscale)
    vectors = extractor.extract(frames)
    k = min(k, len(index))
    report = {
        "format": "masquerade-inspection", "bundle": str(bundle_dir), "seed": seed, "k": k,
        "extractor": index.extractor_name, "layers": list(layers), "frame_size": int(frames.shape[1]),
        "samples": [{"index": i, "seed": seed, "layers": {}} for i in range(samples)], "summary": {},
    }
    for layer in layers:
        rows, similarities = index.top_k(vectors[layer], layer, k)
        threshold = index.memorisation_threshold(layer, MEMORISATION_PERCENTILE)
        best = similarities[:, 0]
        for sample, sample_rows, sample_similarities in zip(report["samples"], rows, similarities, strict=True):
            novelty, percentile = index.novelty(float(sample_similarities[0]), layer)
            sample["layers"][layer] = {
                "best_similarity": round(float(sample_similarities[0]), 5), "novelty": round(novelty, 5),
                "percentile": percentile,
                "neighbours": [{"id": int(index.ids[row]), "row": int(row), "similarity": round(float(score), 5),
                                "title": index.records[row].get("title") or index.records[row].get("file")}
                               for row, score in zip(sample_rows, sample_similarities, strict=True)],
            }
        report["summary"][layer] = {
            "threshold_percentile": index.memorisation_percentile(MEMORISATION_PERCENTILE),
            "threshold_similarity": None if threshold is None else round(threshold, 5),
            "memorised_count": int((best > threshold).sum()) if threshold is not None else None,
            "memorised_share": round(float((best > threshold).mean()), 4) if threshold is not None else None,
            "mean_best_similarity": round(float(best.mean()), 5),
            "max_best_similarity": round(float(best.max()), 5),
        }
    return report, frames, index


CSS = """
body{background:#111;color:#ddd;font:14px/1.4 system-ui,sans-serif;margin:1.5em}
h1{font-size:1.3em}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{padding:.2em .8em;border-bottom:1px solid #333}
.grid{display:flex;flex-wrap:wrap;gap:6px}
.sample{cursor:pointer;border:2px solid transparent;margin:0;text-align:center}
.sample.memorised{border-color:#c33}.sample.selected{outline:2px solid #fc3}
.sample img{width:128px;height:128px;display:block}
.sample figcaption{font-size:11px}.detail{margin-top:1.5em}.detail[hidden]{display:none}
.detail>img{width:256px;height:256px}.layer{margin:.8em 0}.neighbours{display:flex;flex-wrap:wrap;gap:4px}
.neighbour{margin:0;width:72px;font-size:10px;text-align:center}
.thumb{width:64px;height:64px;margin:auto;background-size:cover;image-rendering:pixelated}
"""

JS = """
document.querySelectorAll('.sample').forEach(function(s){s.addEventListener('click',function(){
document.querySelectorAll('.detail').forEach(function(d){d.hidden=true});
document.querySelectorAll('.sample').forEach(function(o){o.classList.remove('selected')});
s.classList.add('selected');var d=document.getElementById('detail-'+s.dataset.index);d.hidden=false;
d.scrollIntoView({behavior:'smooth'});});});
"""


def render_html(report: dict, frames: np.ndarray, index) -> str:
    """The report as one self-contained HTML page."""
    escape = html.escape
    rows_used = sorted({neighbour["row"] for sample in report["samples"] for layer in sample["layers"].values()
                        for neighbour in layer["neighbours"]})
    thumb_css = "".join(f".t{row}{{background-image:url({png_data_uri(index.thumbs[row])})}}\n" for row in rows_used)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Masquerade inspection: {escape(report['bundle'])}</title>",
        f"<style>{CSS}{thumb_css}</style></head><body>",
        f"<h1>Memorisation check: {escape(report['bundle'])}</h1>",
        f"<p>{len(report['samples'])} samples (keyframes 0..{len(report['samples']) - 1} of seed {report['seed']}), "
        f"{report['k']} nearest dataset images per layer, {escape(report['extractor'])} features. "
        "A sample is flagged (red) when, at any layer, its best similarity exceeds the dataset's own "
        "nearest-neighbour similarity at the percentile the index calibrated (so that at most 5% of distinct "
        "collection images would be flagged), mirrored and shifted copies included.</p>",
        "<table id=\"summary\"><tr><th>layer</th><th>threshold (similarity)</th><th>memorised share</th>"
        "<th>mean best similarity</th><th>max best similarity</th></tr>",
    ]
    for layer, summary in report["summary"].items():
        share = summary["memorised_share"]
        parts.append(
            f"<tr class=\"summary-row\" data-layer=\"{layer}\"><td>{layer}</td>"
            f"<td>{summary['threshold_similarity']}</td><td>{'n/a' if share is None else f'{100 * share:.1f}%'}</td>"
            f"<td>{summary['mean_best_similarity']:.4f}</td><td>{summary['max_best_similarity']:.4f}</td></tr>"
        )
    parts.append("</table><div class=\"grid\">")
    pictures = [png_data_uri(frame, SAMPLE_DISPLAY_MAX) for frame in frames]  # each sample encoded once
    thresholds = {layer: summary["threshold_similarity"] for layer, summary in report["summary"].items()}
    for sample, picture in zip(report["samples"], pictures, strict=True):
        memorised = any(thresholds[layer] is not None and data["best_similarity"] > thresholds[layer]
                        for layer, data in sample["layers"].items())
        scores = " ".join(f"{layer[0]} {data['best_similarity']:.3f}" for layer, data in sample["layers"].items())
        parts.append(
            f"<figure class=\"sample{' memorised' if memorised else ''}\" data-index=\"{sample['index']}\">"
            f"<img alt=\"sample {sample['index']}\" src=\"{picture}\">"
            f"<figcaption>#{sample['index']} {scores}</figcaption></figure>"
        )
    parts.append("</div>")
    for sample, picture in zip(report["samples"], pictures, strict=True):
        parts.append(f"<section class=\"detail\" id=\"detail-{sample['index']}\" hidden>"
                     f"<h2>Sample {sample['index']} (seed {sample['seed']}, keyframe {sample['index']})</h2>"
                     f"<img alt=\"sample {sample['index']}\" src=\"{picture}\">")
        for layer, data in sample["layers"].items():
            percentile = "" if data["percentile"] is None else (
                f", more novel than {data['percentile']:.0f}% of the dataset's own nearest pairs")
            parts.append(f"<div class=\"layer\" data-layer=\"{layer}\"><h3>{layer}: best similarity "
                         f"{data['best_similarity']:.4f}, novelty {data['novelty']:.4f}{percentile}</h3>"
                         "<div class=\"neighbours\">")
            for neighbour in data["neighbours"]:
                title = escape(str(neighbour["title"] or ""))
                parts.append(f"<figure class=\"neighbour\" data-id=\"{neighbour['id']}\" "
                             f"data-similarity=\"{neighbour['similarity']}\" title=\"{title}\">"
                             f"<div class=\"thumb t{neighbour['row']}\"></div>"
                             f"<figcaption>{neighbour['similarity']:.3f}<br>{title[:24]}</figcaption></figure>")
            parts.append("</div></div>")
        parts.append("</section>")
    parts.append(f"<script>{JS}</script></body></html>\n")
    return "".join(parts)


def write_report(report: dict, frames: np.ndarray, index, out_dir) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "report.json", report)
    page = out_dir / "index.html"
    write_bytes_atomic(page, render_html(report, frames, index).encode("utf-8"))
    return page


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m studio.inspection", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model bundle with a provenance index")
    parser.add_argument("--samples", type=int, default=100, help="how many samples to render (1..10000)")
    parser.add_argument("--out", required=True, help="folder for index.html and report.json")
    parser.add_argument("--seed", type=int, default=0, help="walk seed: sample i is keyframe i of this seed")
    parser.add_argument("--layer", choices=("both", "early", "late"), default="both")
    parser.add_argument("--k", type=int, default=NEIGHBOURS, help="neighbours per sample and layer")
    parser.add_argument("--no-upscale", action="store_true", help="inspect generator frames without the upscaler")
    parser.add_argument("--vgg-weights", help="VGG16 weights file, for indexes built with --extractor vgg16")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    layers = ("early", "late") if args.layer == "both" else (args.layer,)
    try:
        if not 1 <= args.k <= 256:
            raise ValueError(f"--k {args.k} is outside the allowed range 1..256")
        report, frames, index = inspect_bundle(args.model, args.samples, args.seed, layers, args.k,
                                               upscale=not args.no_upscale, vgg_weights=args.vgg_weights)
        page = write_report(report, frames, index, args.out)
    except (ValueError, FileNotFoundError) as error:
        for line in error_lines(error):
            print(f"error: {line}", file=sys.stderr)
        return 2
    for layer, summary in report["summary"].items():
        share = summary["memorised_share"]
        print(f"{layer}: {'n/a' if share is None else f'{100 * share:.1f}%'} of samples above the dataset's own "
              f"p{summary['threshold_percentile']} nearest-neighbour similarity ({summary['threshold_similarity']})")
    print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
