"""``meshcast score``: what ``meshcast run`` found in a synthetic video, against its truth; in
any video, its meshes against the front-end's own 2D landmarks."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from training.evaluation.defaults import MIN_MATCH_IOU, SWAPS, Swap

SHOWN_ERRORS = ("pa_mpjpe", "mpjpe", "accel_error")  # all in mm


@click.command("score")
@click.argument("result", type=click.Path(path_type=Path))
@click.argument("dataset_file", type=click.Path(path_type=Path), required=False)
@click.option("--video", default=None, help="The synthetic video, as its tracks name it: video000.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="File for the score as JSON; default: score_VIDEO.json (or score_landmarks.json) "
    "beside result.npz.",
)
@click.option(
    "--body", default=None, help="Body model that poses the result; default: the result's."
)
@click.option(
    "--min-iou",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=MIN_MATCH_IOU,
    show_default=True,
    help="Overlap a predicted box needs to match a true one.",
)
@click.option(
    "--truth-landmarks",
    "swap",
    type=click.Choice(SWAPS),
    default=None,
    help="Regress the result again with this part of the matched person-frames' landmarks "
    "the truth's (2d, world: the metric points, all), by --bundle, and score that: what the "
    "front-end's error in that part costs. failed: only the frames where the front-end "
    "reported a wrong skeleton (as frontend-error finds them) lose their landmarks, as if it "
    "had seen nobody there: what a perfect detector of its failures would bring.",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The keypoint bundle that regresses with --truth-landmarks (the one that made RESULT).",
)
def command(
    result: Path,
    dataset_file: Path | None,
    video: str | None,
    json_path: Path | None,
    body: str | None,
    min_iou: float,
    swap: Swap | None,
    bundle: Path | None,
) -> None:
    """Score RESULT (`meshcast run`'s output folder, or its result.npz) of a synthetic video
    against the video's ground truth in DATASET_FILE (`meshcast synth`) and --video: tracks
    matched to true people by box IoU, then MPJPE and PA-MPJPE (mm, 14 LSP joints) of the
    matched person-frames, recall and identity switches. Without DATASET_FILE (any video):
    the meshes' projected limb joints against the visible 2D landmarks the keypoint model
    found, as shares of the person box's height."""
    from service.outputs import RESULT_NPZ
    from training.body import load_body_model
    from training.evaluation.scoring import METRIC_TITLES
    from training.evaluation.video_scoring import score_video_result

    result_npz = result if result.is_file() else result / RESULT_NPZ
    if dataset_file is None:
        _score_landmarks(result_npz, json_path)
        return
    if video is None:
        raise click.UsageError("--video names the synthetic video DATASET_FILE is scored on")
    if swap is not None:
        if bundle is None:
            raise click.UsageError("--truth-landmarks needs the --bundle that regresses again")
        result_npz = _with_truth(result_npz, dataset_file, video, bundle, swap, body)
        video_name = f"{video}_truth_{swap}"
    else:
        video_name = video
    scored = score_video_result(
        result_npz,
        dataset_file,
        video,
        body=load_body_model(body) if body else None,
        min_iou=min_iou,
    )
    json_path = json_path or result_npz.with_name(f"score_{video_name}.json")
    json_path.write_text(scored.model_dump_json(indent=2) + "\n")

    errors = {METRIC_TITLES[name]: getattr(scored, name) for name in SHOWN_ERRORS}
    table = Table(*errors, "matched", "recall", "people", "tracks", "id switches",
                  title=f"{video_name} (mm; people: found/true)")  # fmt: skip
    table.add_row(
        *("—" if value is None else f"{value:.1f}" for value in errors.values()),
        f"{scored.matched_frames}/{scored.person_frames}",
        f"{scored.recall:.2f}",
        f"{scored.people_found}/{scored.people}",
        str(scored.predicted_tracks),
        str(scored.identity_switches),
    )
    Console().print(table)
    if scored.landmark_error is not None and scored.landmark_missed is not None:
        click.echo(
            f"front-end: limb landmarks {scored.landmark_error:.1%} of the box height from the "
            f"true joints (median); no landmarks in {scored.landmark_missed:.1%} of the matched "
            "person-frames"
        )
    click.echo(f"written to {json_path}")


def _with_truth(
    result_npz: Path, dataset_file: Path, video: str, bundle: Path, swap: Swap, body: str | None
) -> Path:
    """``result_npz`` regressed again with the truth's landmarks, written beside it."""
    from service.outputs.result_files import write_result_npz
    from training.body import load_body_model
    from training.evaluation.truth_landmarks import regress_with_true_landmarks

    again = regress_with_true_landmarks(
        result_npz, dataset_file, video, bundle, swap, load_body_model(body) if body else None
    )
    return write_result_npz(again, result_npz.with_name(f"result_truth_{swap}.npz"))


def _score_landmarks(result_npz: Path, json_path: Path | None) -> None:
    from training.evaluation.landmark_agreement import landmark_agreement

    agreement = landmark_agreement(result_npz)
    json_path = json_path or result_npz.with_name("score_landmarks.json")
    json_path.write_text(agreement.model_dump_json(indent=2) + "\n")
    title = "projected joints against detected landmarks (share of box height)"
    table = Table("median", "90th percentile", "points", "person-frames", "tracks", title=title)
    table.add_row(
        *("—" if value is None else f"{value:.1%}" for value in (agreement.median, agreement.p90)),
        str(agreement.points),
        str(agreement.person_frames),
        str(agreement.tracks),
    )
    Console().print(table)
    click.echo(f"written to {json_path}")
