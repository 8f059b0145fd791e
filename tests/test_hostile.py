"""Issue 18: the public mode tried as a hostile visitor would, against a live app with SPACE_ID set and
CCE_KEEP_RUNS=3: gradio_client, raw queue joins with forged sessions and addresses, and crafted run zips.
Every test here failed on the app before the fix. Visitors are told apart by X-Forwarded-For, which uvicorn
takes from a loopback connection as from the proxy in front of a Space."""
import json
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from PIL import Image

from cce_demo.config import PRESETS
from cce_demo.fields import form_values
from conftest import ROOT, running_app, synthetic_request
from raw_queue import call, fn_index, new_session

SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"
LONG_BUT_ALLOWED = synthetic_request(epochs=60)
FORM = ["quick", "synthetic", "exp", 2, ["CE", "CCE (paper form)"], -1, "resnet8", 60, 64, 0.1, "0", "cpu"]
# A handler that reads the form takes its inputs as a set, which Gradio orders by component: the form, the
# smoothing, then the page's state (memory, visitor). PAGE_FORM is the form as a page shows it on load.
PAGE_FORM = ["quick", *form_values(PRESETS["quick"]).values()]


def visitor(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("space-runs"), SPACE_ID="tests/cce-demo", CCE_KEEP_RUNS=3,
                     CCE_MAX_QUEUE=8) as app:
        yield app


@pytest.fixture
def quiet_manager(space):
    """No job left behind by a test."""
    yield space["manager"]
    manager = space["manager"]
    for job in manager.active_jobs():
        manager.cancel(job.job_id)
    for job in manager.list_jobs():
        manager.wait(job.job_id, timeout=60)


def client_for(space, address: str) -> Client:
    return Client(space["url"], verbose=False, headers=visitor(address))


def load_page(space, session: str, address: str, memory=None):
    """A page load in `session` (the load event, as the browser sends it), from `address`."""
    index = fn_index(space["demo"], "on_load")
    answer = call(space["url"], index, [*PAGE_FORM, 0.8, memory, None], session, visitor(address))
    assert answer.success, answer.output
    return answer


# ---------------------------------------------------------------- 1. stopping anyone's job


def test_another_visitor_cannot_cancel_a_job(space, quiet_manager):
    owner, stranger = client_for(space, "198.51.100.1"), client_for(space, "198.51.100.2")
    job_id = owner.predict(LONG_BUT_ALLOWED, api_name="/start_comparison")["job_id"]
    assert job_id in {row["run"] for row in stranger.predict(api_name="/list_runs")} or stranger.predict(
        job_id, api_name="/job_status")["job_id"] == job_id  # the id is easy to learn
    with pytest.raises(AppError, match="started by another visitor"):
        stranger.predict(job_id, api_name="/cancel_job")
    assert not quiet_manager.snapshot(job_id).is_finished
    assert owner.predict(job_id, api_name="/cancel_job")["job_id"] == job_id  # its owner still can
    assert quiet_manager.wait(job_id, timeout=60).status == "cancelled"


# ---------------------------------------------------------------- 2. a forged identity and the one-job limit


def test_forged_sessions_do_not_beat_the_one_job_limit(space, quiet_manager):
    demo, url = space["demo"], space["url"]
    start = fn_index(demo, "on_start")
    headers = visitor("198.51.100.3")
    # Straight to the queue with made-up sessions that never loaded the page: no visitor, no job.
    for _ in range(3):
        answer = call(url, start, [*FORM, 0.8, {"client_id": new_session()}], new_session(), headers)
        assert not answer.success and "reload the page" in answer.text
    assert quiet_manager.active_jobs() == []
    # Ten sessions that did load (ten identities, each validly issued): one address still holds one job.
    accepted = []
    for _ in range(10):
        session = new_session()
        load_page(space, session, "198.51.100.3")
        answer = call(url, start, [*FORM, 0.8, None], session, headers)
        if answer.success:
            accepted.append(answer)
        else:
            assert "You already have 1 job" in answer.text, answer.text
    assert len(accepted) == 1 and len(quiet_manager.active_jobs()) == 1


def app_context(demo):
    """The AppContext behind the app's handlers (wiring.bind closes over it)."""
    for fn in demo.fns.values():
        for cell in getattr(getattr(fn, "fn", None), "__closure__", None) or ():
            app = getattr(cell.cell_contents, "app", None)
            if app is not None and hasattr(app, "signer"):
                return app
    raise AssertionError("no handler holds the app context")


def test_the_signing_secret_is_not_in_the_config(space):
    config = httpx.get(space["url"] + "config", timeout=30).text
    secret = app_context(space["demo"]).signer._secret
    assert len(secret) >= 32 and secret.hex() not in config and repr(secret) not in config


# ---------------------------------------------------------------- 3. deleting anyone's run


def test_another_visitor_cannot_delete_a_run(space, quiet_manager):
    demo, url = space["demo"], space["url"]
    owner = client_for(space, "198.51.100.4")
    job_id = owner.predict(synthetic_request(epochs=1), api_name="/start_comparison")["job_id"]
    quiet_manager.wait(job_id, timeout=120)
    session = new_session()
    load_page(space, session, "198.51.100.5")
    answer = call(url, fn_index(demo, "on_delete_run"), [[job_id], None], session, visitor("198.51.100.5"))
    assert not answer.success and "Only the browser that trained or uploaded a run can delete it" in answer.text
    assert (space["runs"] / job_id).is_dir()


# ---------------------------------------------------------------- 4. imports under the disk rules


def exported_zip(space, tmp_path) -> Path:
    return Path(client_for(space, "198.51.100.6").predict(SHIPPED_RUN, api_name="/export_run"))


def with_created_at(source: Path, destination: Path, created_at: str) -> Path:
    """The same run zip, its run.json dated `created_at` (the uploader writes what it likes)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info.filename)
            if info.filename == "run.json":
                metadata = json.loads(data)
                metadata["created_at"] = created_at
                data = json.dumps(metadata).encode()
            copy.writestr(info.filename, data)
    return destination


def runs_in(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir() if path.is_dir() and not path.name.startswith(".")}


def test_imports_obey_keep_runs_and_a_future_date_is_not_newest(space, quiet_manager, tmp_path):
    runs = space["runs"]
    for path in runs.iterdir():  # start from an empty runs directory (other tests' runs)
        if path.is_dir():
            shutil.rmtree(path)
    source = exported_zip(space, tmp_path)
    future = with_created_at(source, tmp_path / "future.zip", "2099-01-01T00:00:00+0000")
    first = client_for(space, "198.51.100.7").predict(handle_file(str(future)), api_name="/import_run")["run_id"]
    later = [client_for(space, f"198.51.100.{8 + number}").predict(handle_file(str(source)), api_name="/import_run")["run_id"]
             for number in range(3)]
    kept = runs_in(runs)
    assert len(kept) == 3, kept  # CCE_KEEP_RUNS=3 holds after an import, not only after a job
    assert first not in kept and set(later) == kept  # the run dated 2099 was received first: it went first


def test_an_import_that_cannot_fit_is_refused_before_writing(space, quiet_manager, tmp_path):
    from cce_demo.retention import DiskRules, runs_on_disk
    from cce_demo.transfer import ImportRefused, import_run

    source = exported_zip(space, tmp_path)
    runs = tmp_path / "small-disk"
    runs.mkdir()
    with pytest.raises(ImportRefused, match="more than the 0.001 MB kept"):
        import_run(source, runs, rules=DiskRules(keep_runs=3, max_runs_mb=0.001))
    assert list(runs.iterdir()) == []  # nothing written, not even a staging folder
    assert runs_on_disk(runs) == []


def test_imports_per_visitor_are_limited(space, quiet_manager, tmp_path):
    source = exported_zip(space, tmp_path)
    client = client_for(space, "198.51.100.30")
    for _ in range(5):
        client.predict(handle_file(str(source)), api_name="/import_run")
    with pytest.raises(AppError, match="within the hour"):
        client.predict(handle_file(str(source)), api_name="/import_run")
    assert len(runs_in(space["runs"])) <= 3


# ---------------------------------------------------------------- 5. one client and the shared queue


def flood_image(tmp_path) -> Path:
    """24.9 megapixels of PNG in under 100 KB: cheap to send, expensive to decode in full."""
    path = tmp_path / "flood.png"
    Image.new("L", (5000, 4980)).save(path)
    return path


def test_a_classify_flood_is_refused_at_the_door_and_others_are_served(space, tmp_path):
    image = flood_image(tmp_path)
    flooder = client_for(space, "198.51.100.40")
    jobs = [flooder.submit(handle_file(str(image)), SHIPPED_RUN, api_name="/classify") for _ in range(12)]
    refused_at_door, refused_image = 0, 0
    for job in jobs:
        try:
            job.result(timeout=120)
        except Exception as error:  # noqa: BLE001 - either refusal is what the test counts
            text = str(error)
            # gradio_client reports a refused join (HTTP 503) as "Queue is full"; the server's answer and its
            # log line name the per-visitor limit.
            if isinstance(error, QueueError) or "per visitor" in text:
                refused_at_door += 1
            elif "megapixels" in text:
                refused_image += 1
            else:
                raise
    assert refused_at_door >= 1 and refused_at_door + refused_image == 12
    # Another visitor meanwhile: the page, the config and the API all answer.
    other = client_for(space, "198.51.100.41")
    assert httpx.get(space["url"], timeout=30, headers=visitor("198.51.100.41")).status_code == 200
    assert other.predict(api_name="/list_runs")
    assert other.predict(handle_file(str(ROOT / "examples" / "example-04.png")), SHIPPED_RUN, api_name="/classify")["predictions"]


def test_a_huge_png_is_refused_before_decoding_and_other_formats_are_not_read(space, tmp_path):
    client = client_for(space, "198.51.100.42")
    with pytest.raises(AppError, match="decoded up to 4 megapixels"):
        client.predict(handle_file(str(flood_image(tmp_path))), SHIPPED_RUN, api_name="/classify")
    tiff = tmp_path / "image.tif"
    Image.new("RGB", (64, 64)).save(tiff)
    with pytest.raises(AppError, match="not an image in a format the app reads"):
        client.predict(handle_file(str(tiff)), SHIPPED_RUN, api_name="/classify")


# ---------------------------------------------------------------- 7. smaller holes


def test_api_errors_show_no_server_paths(space, tmp_path):
    broken = space["runs"] / "broken-run"
    broken.mkdir(exist_ok=True)
    (broken / "run.json").write_text("{not json")
    client = client_for(space, "198.51.100.50")
    with pytest.raises(AppError) as refused:
        client.predict("broken-run", api_name="/export_run")
    assert str(space["runs"]) not in str(refused.value) and "/" not in str(refused.value).replace("run.json", "")
    shutil.rmtree(broken)


def test_gradio_level_refusals_are_one_line(space, capfd, caplog):
    """Joins that Gradio itself refuses while preprocessing: a string for a slider, a file outside the upload
    folder (an SSRF or local-file attempt through FileData)."""
    demo, url = space["demo"], space["url"]
    capfd.readouterr()
    with caplog.at_level("WARNING", logger="cce_demo.ui"):
        answer = call(url, fn_index(demo, "on_start"), [*FORM, "not a number", None], new_session(), visitor("198.51.100.60"))
        assert not answer.success
        outside = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd"}
        answer = call(url, fn_index(demo, "on_import_run"), [outside, None], new_session(), visitor("198.51.100.60"))
        assert not answer.success
    out = capfd.readouterr()
    assert "Traceback" not in out.err + out.out
    assert [record for record in caplog.records if "refused (gradio)" in record.getMessage()]
