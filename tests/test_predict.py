import re
import numpy as np
import pytest
from PIL import Image

from bad_images import ODD, REFUSED, write_bad_images
from cce_demo.run_directory import RunWriter, read_run
from cce_demo.engine import train_paired
import threading
import time

from cce_demo.predict import (
    InvalidImageError, ModelCache, classify_upload, open_upload, prepare_image, run_single_threaded,
    InferenceStopped, stop_inference_thread,
)


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory):
    return write_bad_images(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from cce_demo.config import TrainConfig

    config = TrainConfig(dataset="synthetic", imbalance_ratio=2.0, epochs=1, batch_size=64, device="cpu",
                         max_per_class=30, synthetic_test_per_class=5)
    writer = RunWriter(tmp_path_factory.mktemp("runs"), config, "predict-run")
    writer.finish(train_paired(config, writer.record))
    return read_run(writer.run_dir)


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_uploads_are_refused_clearly(bad_images, name):
    with pytest.raises(InvalidImageError, match=REFUSED[name]):
        open_upload(bad_images[name])


@pytest.mark.parametrize("name", list(ODD))
def test_odd_uploads_are_prepared_with_a_note(bad_images, name):
    prepared = prepare_image(open_upload(bad_images[name]))
    assert prepared.pixels.shape == (32, 32, 3) and prepared.pixels.dtype == np.uint8
    assert any(ODD[name] in note for note in prepared.notes), prepared.notes


def test_sixteen_bit_grey_is_rescaled_not_clipped(bad_images):
    pixels = prepare_image(open_upload(bad_images["grey16.png"])).pixels
    assert pixels.min() < 40 and pixels.max() > 200 and 60 < pixels.mean() < 200


def test_transparent_red_over_white_is_pink_to_red(bad_images):
    pixels = prepare_image(open_upload(bad_images["rgba.png"])).pixels
    assert (pixels[..., 0] > 240).all() and pixels[:, 0, 1].mean() > 200 and pixels[:, -1, 1].mean() < 30


def test_prepare_keeps_a_32_pixel_image_as_is():
    original = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    prepared = prepare_image(Image.fromarray(original))
    assert np.array_equal(prepared.pixels, original) and prepared.notes == ()


def test_classify_gives_top5_for_every_model(trained_run, tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(np.full((50, 70, 3), 120, dtype=np.uint8)).save(path)
    cache = ModelCache()
    prepared, predictions = classify_upload(path, trained_run, cache)
    assert set(predictions) == {"ce", "cce"}
    for top in predictions.values():
        assert len(top) == 5 and all(top[i][1] >= top[i + 1][1] for i in range(4))
        assert 0 < sum(p for _, p in top) <= 1.0 + 1e-6
    assert cache.get(trained_run) is cache.get(trained_run)  # loaded once


# ---------------------------------------------------------------- post-hoc prior correction


def test_prior_correction_divides_the_prior_out():
    """Oracle: softmax(logits - log prior) equals Bayes' rule p(y|x) / prior(y), renormalised."""
    import torch

    from cce_demo.predict import prior_adjusted_logits

    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    counts = [5000, 1000, 100, 50]
    prior = np.array(counts, dtype=np.float64) / sum(counts)
    adjusted = torch.softmax(prior_adjusted_logits(logits, counts), dim=1).numpy()
    probabilities = torch.softmax(logits, dim=1).double().numpy()
    oracle = probabilities / prior
    oracle /= oracle.sum(axis=1, keepdims=True)
    assert np.allclose(adjusted, oracle, atol=1e-6)
    # A uniform prior changes nothing; tau scales the correction.
    assert torch.allclose(prior_adjusted_logits(logits, [7, 7, 7, 7]) - logits, torch.full_like(logits, np.log(4)))
    half = prior_adjusted_logits(logits, counts, tau=0.5) - logits
    assert np.allclose(half.numpy(), -0.5 * np.log(prior)[None, :], atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        prior_adjusted_logits(logits, [1, 0, 1, 1])
    with pytest.raises(ValueError, match="4 counts"):
        prior_adjusted_logits(logits, [1, 2])


def test_prior_correction_moves_predictions_toward_rare_classes(trained_run, tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    cache = ModelCache()
    _, plain = classify_upload(path, trained_run, cache, k=10)
    _, corrected = classify_upload(path, trained_run, cache, k=10, correct_prior=True)
    counts = dict(zip(trained_run.class_names, trained_run.class_counts))
    for loss in plain:
        def expected_count(top):
            return sum(probability * counts[name] for name, probability in top)
        assert expected_count(corrected[loss]) < expected_count(plain[loss])  # the head classes lost weight


def test_a_large_jpeg_is_decoded_scaled_down_and_never_above_the_cap():
    import io

    from PIL import Image

    from cce_demo.predict import MAX_DECODED_PIXELS, decoded_size, open_upload, prepare_image

    buffer = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 40, 40)).save(buffer, "JPEG")
    image = open_upload(buffer.getvalue())
    assert image.size == (1500, 1000) and image.width * image.height <= MAX_DECODED_PIXELS
    assert prepare_image(image).pixels.shape == (32, 32, 3)
    assert decoded_size(2000, 2000, "PNG") == (2000, 2000)  # at most the cap: as it is
    assert decoded_size(3000, 3000, "PNG") is None and decoded_size(3000, 3000, "JPEG") == (1500, 1500)


def test_classify_scores_the_image_and_its_mirror_when_the_run_used_flip_tta():
    import numpy as np
    import torch

    from cce_demo.predict import class_probabilities

    class LeftColumn(torch.nn.Module):
        # logits = [mean of the leftmost column, mean of the rightmost column] of channel 0
        def forward(self, x):
            return torch.stack([x[:, 0, :, 0].mean(dim=1), x[:, 0, :, -1].mean(dim=1)], dim=1)

    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:, 0, 0] = 255  # a bright left column: plain scoring prefers class 0
    plain = class_probabilities({"ce": LeftColumn()}, pixels, "cifar10")["ce"]
    flipped = class_probabilities({"ce": LeftColumn()}, pixels, "cifar10", flip=True)["ce"]
    assert plain[0] > plain[1]
    assert torch.allclose(flipped, torch.tensor([0.5, 0.5]), atol=1e-6)  # the mirror view balances it exactly


def test_inference_runs_on_one_intra_op_thread_and_leaves_the_others_alone():
    import torch

    stop_inference_thread()  # a fresh inference thread, started as the app starts it
    default = torch.get_num_threads()
    weights = torch.randn(16, 3, 3, 3)

    def convolve_then_count():  # a real parallel operation first: torch fixes a thread's count at its first one
        with torch.inference_mode():
            torch.nn.functional.conv2d(torch.randn(8, 3, 64, 64), weights)
        return torch.get_num_threads()

    assert run_single_threaded(convolve_then_count) == 1
    assert run_single_threaded(convolve_then_count) == 1
    assert torch.get_num_threads() == default  # training and the rest of the app keep theirs
    stop_inference_thread()


def test_the_inference_thread_stops_at_shutdown_and_a_later_request_gets_a_fresh_one():
    def inference_threads():
        return [thread for thread in threading.enumerate() if thread.name.startswith("cce-classify")]

    assert run_single_threaded(threading.current_thread).name.startswith("cce-classify")
    assert inference_threads()
    stop_inference_thread()
    for thread in inference_threads():
        thread.join(5)
    assert not inference_threads()
    assert run_single_threaded(lambda: 2 + 2) == 4
    stop_inference_thread()


def test_a_request_cut_off_by_the_shutdown_gets_a_clear_error():
    import threading as threads

    started, release = threads.Event(), threads.Event()

    def slow():
        started.set()
        release.wait(5)
        return "done"

    first = []
    runner = threads.Thread(target=lambda: first.append(run_single_threaded(slow)))
    runner.start()
    started.wait(5)
    waiting = []

    def queued():  # waits behind the slow image, then the shutdown cancels it
        try:
            run_single_threaded(lambda: "never")
        except InferenceStopped as error:
            waiting.append(str(error))

    second = threads.Thread(target=queued)
    second.start()
    from cce_demo import predict

    for _ in range(500):  # bounded: until the second request waits in the thread's queue (a private detail)
        if predict._INFERENCE_THREAD._work_queue.qsize():
            break
        time.sleep(0.01)
    stop_inference_thread()
    release.set()
    runner.join(5)
    second.join(5)
    assert first == ["done"]  # the image under way finishes
    assert waiting and "shutting down" in waiting[0]


@pytest.mark.parametrize("name", ["huge.png", "flood.png"])
def test_a_too_large_image_is_told_its_size_and_what_to_do(bad_images, name):
    with pytest.raises(InvalidImageError) as refused:
        open_upload(bad_images[name])
    message = str(refused.value)
    assert re.search(r"\(\d+(\.\d)? megapixels\)", message), message  # its size, e.g. "(64 megapixels)"
    assert "save it at about 1,000 px on the long side" in message


def test_a_file_over_the_byte_limit_is_told_its_size_and_what_to_do(tmp_path):
    from cce_demo.predict import MAX_UPLOAD_BYTES

    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (MAX_UPLOAD_BYTES + 2**20))
    with pytest.raises(InvalidImageError, match=r"The file is 21\.0 MB; the limit is 20 MB\. .*smaller copy"):
        open_upload(str(big))
