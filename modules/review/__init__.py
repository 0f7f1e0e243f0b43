"""Review helpers for coders: session timelines (PNG/HTML), agreement reports (Cohen's κ, F1, confusion matrix),
and ELAN/CSV exchange of NOVA annotations. Command line: ``nova-infant review …`` (see docs/review.md)."""

from nova_infant.review.agreement import agreement_report, frame_pair, plot_confusion, scores, write_report_json
from nova_infant.review.annotations import read_annotation, sample_frames, write_annotation
from nova_infant.review.elan import export_csv, export_elan, import_elan_tier, tier_to_annotation
from nova_infant.review.timeline import annotation_track, build_tracks, feature_track, render_html, render_png

__all__ = ["agreement_report", "frame_pair", "plot_confusion", "scores", "write_report_json", "read_annotation",
           "sample_frames", "write_annotation", "export_csv", "export_elan", "import_elan_tier",
           "tier_to_annotation", "annotation_track", "build_tracks", "feature_track", "render_html", "render_png"]
