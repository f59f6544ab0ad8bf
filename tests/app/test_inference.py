"""Classifier: files are prepared for prediction exactly as training prepared them."""

import numpy as np
import pytest
from PIL import Image

from nnfs.app.inference import Classifier
from nnfs.app.models import reference_cnn
from nnfs.checkpoint import save
from nnfs.data import ImageFolder, Preprocessing
from tests.imagefolders import make_folder


def test_classifier_prepares_files_exactly_as_training_did(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b", "c"], per_class=3, mode="RGB", size=(9, 11))
    data = ImageFolder(root, channels=1, image_size=(8, 8))
    pre = Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels)
    net = reference_cnn(1, 8, 3).eval()
    save(tmp_path / "m.npz", net, class_names=data.class_names, preprocessing=pre)
    expected = net.predict_proba(pre.apply(data.images))
    predictions = Classifier(tmp_path / "m.npz").predict(data.paths, top=3)
    for row, prediction in zip(expected, predictions):
        got = dict(prediction.top)
        np.testing.assert_allclose([got[name] for name in data.class_names], row, rtol=1e-5)
        assert [p for _, p in prediction.top] == sorted(row.tolist(), reverse=True)


def test_top_and_batch_size_may_be_numpy_integers_but_not_bools(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b", "c"], per_class=2, mode="L", size=(8, 8))
    data = ImageFolder(root)
    save(tmp_path / "m.npz", reference_cnn(1, 8, 3).eval(), class_names=data.class_names,
         preprocessing=Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels))
    classifier = Classifier(tmp_path / "m.npz")
    ours = classifier.predict(data.paths, top=np.int64(2), batch_size=np.int32(4))
    assert [len(p.top) for p in ours] == [2] * 6
    assert [p.top for p in ours] == [p.top for p in classifier.predict(data.paths, top=2, batch_size=4)]
    for arguments in ({"top": True}, {"batch_size": np.bool_(True)}):
        with pytest.raises(TypeError, match="Classifier.predict: (top|batch_size) must be an int"):
            classifier.predict(data.paths, **arguments)


def test_a_folder_where_an_image_was_is_a_prediction_error_not_an_exception(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=2)
    data = ImageFolder(root)
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2).eval(), class_names=data.class_names,
         preprocessing=Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels))
    (root / "a" / "000.png").unlink()
    (root / "a" / "000.png").mkdir()
    predictions = Classifier(tmp_path / "m.npz").predict(data.paths)
    assert predictions[0].error == f"not a regular file (a folder), not opened: {root / 'a' / '000.png'}"
    assert [p.error for p in predictions[1:]] == [None] * 3


def test_one_path_alone_is_one_image(tmp_path):
    """A string iterated is its characters: each would have been 'classified'."""
    from nnfs.app.inference import Classifier
    from nnfs.app.models import reference_cnn
    from nnfs.checkpoint import save
    from nnfs.data import Preprocessing
    from tests.imagefolders import write_image

    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=["a", "b"],
         preprocessing=Preprocessing((8, 8), 1, [0.5], [0.2]))
    image = write_image(tmp_path / "x.png")
    classifier = Classifier(tmp_path / "m.npz", custom_layers=())
    for one in (str(image), image):
        [prediction] = classifier.predict(one)
        assert prediction.error is None and prediction.path == one


@pytest.mark.parametrize("paths, got", [
    (None, "got NoneType"), (5, "got int"), (Image.new("L", (8, 8)), "got Image"),
    ([Image.new("L", (8, 8))], r"paths\[0\] must be an image file path .* got Image"),
    (np.zeros((2, 1, 8, 8), np.uint8), r"got ndarray"),
    (["x.png", None], r"paths\[1\] must be an image file path .* got NoneType"),
])
def test_what_is_not_an_image_path_is_refused_naming_predict(tmp_path, paths, got):
    """A PIL image was "'Image' object is not iterable", an array or None "expected str, bytes or
    os.PathLike object" from inside the file reader, after earlier batches were classified."""
    save(tmp_path / "m.npz", reference_cnn(1, 8, 2), class_names=["a", "b"],
         preprocessing=Preprocessing((8, 8), 1, [0.5], [0.2]))
    with pytest.raises(TypeError, match=f"Classifier.predict: .*{got}"):
        Classifier(tmp_path / "m.npz").predict(paths)
