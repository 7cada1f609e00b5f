"""Predicting your own pictures: preparation as Fashion-MNIST's, any format and size, bad files reported."""
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

import mxnet as mx

from gluon_resnet import predict, train
from gluon_resnet.errors import UserError
from gluon_resnet.models import get_model

from helpers import ROOT


def trousers(size=(400, 300), background="white", ink="navy", box=(150, 40, 250, 260), noise=4):
    """A photo-like picture: two trouser legs on a slightly noisy background."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box
    mid, step = (left + right) // 2, (right - left) // 20
    draw.rectangle((left, top, right, top + (bottom - top) // 4), fill=ink)
    draw.polygon([(left, top), (mid - step, top), (mid - 2 * step, bottom), (left + step, bottom)], fill=ink)
    draw.polygon([(mid + step, top), (right, top), (right - step, bottom), (mid + 2 * step, bottom)], fill=ink)
    if not noise:
        return image
    noise = np.random.default_rng(0).normal(0, noise, (size[1], size[0], 1))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def shipped():
    net = get_model(predict.DEFAULT_MODEL, pretrained=True)
    net.hybridize()
    return net


def test_the_default_weights_name_every_example_picture_right(shipped, capsys):
    """README and docs/use.md say the default weights get all four drawings of docs/examples right;
    the command line gives the same answers as the default net itself."""
    drawn = {"bag.gif": "bag", "sneaker.jpg": "sneaker", "t-shirt.png": "t-shirt", "trousers.bmp": "trouser"}
    assert sorted(p.name for p in (ROOT / "docs" / "examples").iterdir()) == sorted(drawn)
    paths = [ROOT / "docs" / "examples" / name for name in drawn]
    assert [r["top"][0][0] for r in predict.classify(shipped, paths)] == list(drawn.values())
    assert predict.main([str(p) for p in paths]) == 0
    assert [line.split(": ", 1)[1].split(" ")[0] for line in capsys.readouterr().out.splitlines()] == list(
        drawn.values())


def test_a_light_background_photo_becomes_a_fashion_mnist_image():
    x = predict.prepare(trousers())
    assert x.shape == (28, 28) and x.dtype == np.uint8
    rows, cols = np.nonzero(x > 30)
    assert rows.min() == 0 and rows.max() == 27  # the longest edge (the legs) spans the frame
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1  # centred left to right
    assert x[:, :4].max() == 0 and x[:, -4:].max() == 0  # a black background beside the object
    assert x.max() == 255


def test_dark_and_light_backgrounds_give_the_same_input():
    photo = trousers()
    np.testing.assert_allclose(predict.prepare(ImageOps.invert(photo)), predict.prepare(photo), atol=2)


def test_a_wide_object_keeps_its_aspect():
    image = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(image).rectangle((50, 130, 249, 179), fill=0)  # 200 x 50
    rows, cols = np.nonzero(predict.prepare(image))
    assert (cols.min(), cols.max()) == (0, 27) and rows.max() - rows.min() + 1 == 7
    assert (rows.min() + rows.max()) / 2 == pytest.approx(13.5, abs=1)


@pytest.mark.parametrize("fmt, convert, size", [
    ("PNG", None, (400, 300)), ("JPEG", None, (400, 300)), ("BMP", None, (400, 300)),
    ("GIF", "P", (400, 300)), ("PNG", "L", (400, 300)), ("PNG", None, (6000, 4500)),
])
def test_any_format_colour_and_size(tmp_path, fmt, convert, size):
    scale = size[0] // 400
    photo = trousers(size=size, box=tuple(v * scale for v in (150, 40, 250, 260)), noise=4 if scale == 1 else 0)
    path = tmp_path / f"photo.{fmt.lower()}"
    (photo.convert(convert) if convert else photo).save(path, fmt)
    difference = np.abs(predict.prepare_file(path).astype(float) - predict.prepare(trousers()))
    assert difference.mean() < 4 and np.percentile(difference, 99) < 40  # JPEG's artefacts, GIF's palette


def test_a_transparent_background_counts_as_paper(tmp_path):
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))  # transparent black
    ImageDraw.Draw(image).ellipse((50, 20, 150, 180), fill=(20, 20, 20, 255))
    image.save(tmp_path / "drawn.png")
    x = predict.prepare_file(tmp_path / "drawn.png")
    assert x[14, 14] == 255 and x[0, 0] == 0


def test_real_test_images_photographed_are_recognised(fashion, shipped, tmp_path):
    """200 real test images made into 'product photos' (negated, enlarged 12x, set off-centre on a
    larger white card, saved as JPEG) get the classes the net gives the original images."""
    images = fashion.test_images[:200]
    paths = []
    for i, image in enumerate(images):
        card = Image.new("L", (500, 420), 255)
        card.paste(Image.fromarray(255 - image).resize((336, 336), Image.BICUBIC), (40 + i % 100, 30))
        paths.append(tmp_path / f"{i}.jpg")
        card.save(paths[-1], quality=90)
    results = predict.classify(shipped, paths)
    from_photos = np.array([r["probabilities"].argmax() for r in results])
    direct = shipped(mx.np.array(images[:, None].astype(np.float32) / 255)).asnumpy().argmax(axis=1)
    assert (from_photos == direct).mean() >= 0.9


def test_bad_files_are_one_line_each_and_the_rest_are_predicted(tmp_path, capsys):
    trousers().save(tmp_path / "good.jpg")
    good_png = tmp_path / "good.png"
    trousers().save(good_png)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(good_png.read_bytes()[:2000])
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "folder").mkdir()
    Image.new("RGB", (50, 50), "white").save(tmp_path / "blank.png")
    names = ["good.jpg", "missing.png", "empty.png", "truncated.png", "notes.png", "folder", "blank.png",
             "good.png"]
    assert predict.main([str(tmp_path / n) for n in names]) == 2
    captured = capsys.readouterr()
    out, err = captured.out.splitlines(), captured.err.splitlines()
    assert [line.split(":")[0] for line in out] == [str(tmp_path / "good.jpg"), str(tmp_path / "good.png")]
    for line in out:
        pairs = line.split(": ", 1)[1].split(", ")
        probs = [float(p.rsplit(" ", 1)[1]) for p in pairs]
        assert len(pairs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.001
    expected = {"missing.png": "no such file", "empty.png": "empty", "truncated.png": "truncated",
                "notes.png": "not an image", "folder": "folder", "blank.png": "blank"}
    assert len(err) == len(expected)
    for line, (name, words) in zip(err, expected.items()):
        assert line.startswith(f"error: {tmp_path / name}: ") and words in line, line


def test_show_draws_each_input_beside_its_probabilities(tmp_path, capsys):
    trousers().save(tmp_path / "a.png")
    ImageOps.invert(trousers()).save(tmp_path / "b.bmp")
    assert predict.main([str(tmp_path / "a.png"), str(tmp_path / "b.bmp"), "--show", str(tmp_path / "s.png")]) == 0
    assert f"wrote {tmp_path / 's.png'}" in capsys.readouterr().out
    with Image.open(tmp_path / "s.png") as image:
        assert image.format == "PNG" and image.height > image.width / 3


def test_a_run_folder_and_other_weights(tmp_path, capsys, run_cli):
    run = tmp_path / "run"
    assert train.main(["--subset", "200", "--batch-size", "40", "--resize", "16", "--epochs", "1",
                       "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    trousers().save(tmp_path / "t.png")
    assert predict.main([str(tmp_path / "t.png"), "--run", str(run)]) == 0  # resnet18_d2l at 16x16
    assert capsys.readouterr().out.startswith(f"{tmp_path / 't.png'}: ")
    for args, words in [(["--model", "resnet50"], "no shipped weights for 'resnet50'"),
                        (["--model", "fmnist_resnet8", "--run", str(run)], "not allowed with argument")]:
        out = run_cli("gluon_resnet.predict", tmp_path / "t.png", *args)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and words in out.stderr
        assert out.stderr.count("\n") == 1, out.stderr


def test_a_blank_picture_cannot_be_classified():
    with pytest.raises(UserError, match="blank"):
        predict.prepare(Image.new("RGB", (10, 10), "gray"))
