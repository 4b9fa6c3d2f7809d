"""The image endpoints on real finished runs and a real sweep: valid PNG, SVG and GIF of the size asked."""

import io
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.test_end_to_end import FINAL, embedded_env, sweepyard_up, wait_for, wait_for_sweep

pytestmark = pytest.mark.e2e


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_svg(data: bytes) -> None:
    assert ET.fromstring(data).tag.endswith("svg")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    tmp_path = tmp_path_factory.mktemp("plots")
    env = {**embedded_env(tmp_path), "SWEEPYARD_BOUNDARY_FRAMES": "12"}
    with sweepyard_up(env, tmp_path / "up.log") as (client, _):
        xor = client.post("/api/v1/runs", json={"epochs": 60, "depth": 2, "width": 6, "name": "xor"}).json()
        fit = client.post("/api/v1/runs", json={"dataset": "regression_1d", "epochs": 60, "width": 8}).json()
        sweep = client.post(
            "/api/v1/sweeps",
            json={
                "method": "grid",
                "parameters": {"depth": {"values": [0, 1]}, "width": {"values": [2, 4]}},
                "base": {"epochs": 20, "n_samples": 400},
                "repeats": 2,
            },
        ).json()
        for run in (xor, fit):
            assert wait_for(client, run["id"], lambda r: r["status"] in FINAL)["status"] == "succeeded"
        wait_for_sweep(client, sweep["id"])
        yield client, {"xor": xor["id"], "fit": fit["id"], "sweep": sweep["id"]}


@pytest.mark.parametrize(
    ("run", "name"),
    [("xor", "loss"), ("fit", "loss"), ("xor", "predictions"), ("fit", "predictions"), ("xor", "boundary")],
)
def test_run_images_come_in_the_size_and_format_asked(
    finished: tuple[httpx.Client, dict[str, Any]], run: str, name: str
) -> None:
    client, ids = finished
    png = client.get(f"/api/v1/runs/{ids[run]}/plots/{name}.png", params={"width": 640, "height": 480})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png_size(png.content) == (640, 480)
    svg = client.get(f"/api/v1/runs/{ids[run]}/plots/{name}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert_svg(svg.content)
    # A name without an extension takes format=.
    assert_svg(client.get(f"/api/v1/runs/{ids[run]}/plots/{name}", params={"format": "svg"}).content)


def test_the_loss_plot_marks_the_best_epoch_and_the_boundary_names_its_epoch(
    finished: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, ids = finished
    run = client.get(f"/api/v1/runs/{ids['xor']}").json()
    loss = client.get(f"/api/v1/runs/{ids['xor']}/plots/loss.svg").text
    assert f"best epoch {run['summary']['best_epoch']}" in loss and "xor" in loss
    boundary = client.get(f"/api/v1/runs/{ids['xor']}/plots/boundary.svg", params={"epoch": 1}).text
    assert "epoch 0" in boundary  # frames at epochs 0, 5, 11...: the nearest to 1 is the untrained model
    assert "epoch 60" in client.get(f"/api/v1/runs/{ids['xor']}/plots/boundary.svg").text


def test_the_boundary_animation_has_a_frame_per_snapshot(
    finished: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, ids = finished
    gif = client.get(f"/api/v1/runs/{ids['xor']}/plots/boundary.gif", params={"width": 400, "height": 360})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    image = Image.open(io.BytesIO(gif.content))
    assert image.format == "GIF" and image.size == (400, 360)
    assert getattr(image, "n_frames", 1) == 12


@pytest.mark.parametrize("name", ["heatmap", "importance", "parallel", "curves"])
def test_sweep_images(finished: tuple[httpx.Client, dict[str, Any]], name: str) -> None:
    client, ids = finished
    params: dict[str, str | int] = {"width": 700, "height": 500}
    if name == "heatmap":
        params |= {"rows": "depth", "cols": "width"}
    png = client.get(
        f"/api/v1/sweeps/{ids['sweep']}/plots/{name}.png", params=params or {"width": 700, "height": 500}
    )
    assert png.status_code == 200, png.text
    assert png_size(png.content) == (700, 500)
    assert_svg(client.get(f"/api/v1/sweeps/{ids['sweep']}/plots/{name}.svg").content)


def test_curves_overlay_the_runs_asked_for(finished: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, ids = finished
    runs = client.get("/api/v1/runs", params={"sweep_id": ids["sweep"]}).json()["data"]
    chosen = [runs[0]["id"], runs[3]["id"]]
    svg = client.get(
        f"/api/v1/sweeps/{ids['sweep']}/plots/curves.svg",
        params={"run_ids": ",".join(map(str, chosen)), "curve": "train_loss"},
    ).text
    assert all(f"#{run_id} " in svg for run_id in chosen) and "train_loss" in svg
    assert f"#{runs[1]['id']} " not in svg


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/v1/runs/999999/plots/loss.png", 404, "run 999999 not found"),
        ("/api/v1/sweeps/999999/plots/heatmap.png", 404, "sweep 999999 not found"),
        ("/api/v1/runs/{fit}/plots/boundary.png", 422, "regression"),
        ("/api/v1/runs/{fit}/plots/boundary.gif", 422, "regression"),
        ("/api/v1/runs/{xor}/plots/loss.jpeg", 422, "name"),
        ("/api/v1/runs/{xor}/plots/loss.gif", 422, "name"),
        ("/api/v1/runs/{xor}/plots/loss.png?format=svg", 422, "format"),
        ("/api/v1/runs/{xor}/plots/loss.png?width=99999", 422, "width"),
        ("/api/v1/sweeps/{sweep}/plots/heatmap.png?rows=colour", 422, "colour"),
        ("/api/v1/sweeps/{sweep}/plots/curves.png?run_ids=1,x", 422, "run_ids"),
        ("/api/v1/sweeps/{sweep}/plots/curves.png?run_ids=999999", 404, "run 999999 is not a run of sweep"),
        ("/api/v1/sweeps/{sweep}/plots/curves.png?run_ids={xor}", 404, "is not a run of sweep"),
        ("/api/v1/sweeps/{sweep}/plots/curves.png?run_ids=99999999999999999999", 422, "run_ids"),
        ("/api/v1/runs/{xor}/plots/boundary.gif?width=2000&height=2000", 422, "pixels a frame"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    finished: tuple[httpx.Client, dict[str, Any]], path: str, status: int, words: str
) -> None:
    client, ids = finished
    response = client.get(path.format(**ids))
    assert response.status_code == status, response.text
    assert words in response.text


def test_a_run_not_trained_yet_has_curves_but_no_predictions_or_boundary(client: TestClient) -> None:
    run_id = client.post("/api/v1/runs", json={"epochs": 50}).json()["id"]  # no worker here: it stays queued
    for name, words in (("predictions.png", "no predictions"), ("boundary.png", "no boundary frames")):
        response = client.get(f"/api/v1/runs/{run_id}/plots/{name}")
        assert response.status_code == 404 and words in response.json()["detail"]
    assert png_size(client.get(f"/api/v1/runs/{run_id}/plots/loss.png").content) == (800, 500)
