"""The memorisation flag sees copies: mirror-invariant, shift-robust features, a flag calibrated on the collection."""

import json

import numpy as np
import pytest
import tensorflow as tf
from test_provenance import indexed  # noqa: F401  (the module-scoped index fixture)

from installation.provenance import ProvenanceIndex
from models import dcgan
from models import features as feats
from training import memorisation


@pytest.fixture(scope="module")
def discriminator():
    tf.keras.utils.set_random_seed(5)
    return dcgan.discriminator(64, 0.25)


@pytest.fixture(scope="module")
def images(indexed):  # noqa: F811
    return indexed["images"][:16]


def test_mirrored_images_have_exactly_the_features_of_the_original(discriminator, images):
    invariant = feats.build_extractor("discriminator", discriminator=discriminator, invariance=feats.INVARIANT)
    plain = feats.build_extractor("discriminator", discriminator=discriminator)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    for layer in feats.LAYERS:
        np.testing.assert_allclose(invariant.extract(images)[layer], invariant.extract(mirrored)[layer], atol=2e-5)
        similarity = np.sum(plain.extract(images)[layer] * plain.extract(mirrored)[layer], axis=1)
        assert similarity.min() < 0.999  # without invariance a mirror image is another picture


def test_shifted_copies_stay_closer_with_invariance(discriminator, images):
    invariant = feats.build_extractor("discriminator", discriminator=discriminator, invariance=feats.INVARIANT)
    plain = feats.build_extractor("discriminator", discriminator=discriminator)
    shifted = memorisation.moved(images, 2, 2)

    def mean_similarity(extractor, layer):
        return float(np.mean(np.sum(extractor.extract(images)[layer] * extractor.extract(shifted)[layer], axis=1)))

    for layer in feats.LAYERS:
        assert mean_similarity(invariant, layer) > mean_similarity(plain, layer)


def test_joint_thresholds_flag_at_most_five_percent_of_the_collection():
    rng = np.random.default_rng(1)
    best = {"early": rng.uniform(0.8, 1.0, 1000), "late": rng.uniform(0.5, 1.0, 1000)}
    percentile, thresholds, share = memorisation.joint_thresholds(best)
    assert 95 <= percentile < 100 and share <= 0.05
    flagged = (best["early"] > thresholds["early"]) | (best["late"] > thresholds["late"])
    assert flagged.mean() == pytest.approx(share)
    assert share > 0.04  # the lowest percentile that holds the limit, not an over-strict one


def test_the_index_calibrates_the_flag_and_records_what_it_catches(indexed):  # noqa: F811
    calibration = json.loads((indexed["bundle"] / "index" / "calibration.json").read_text())
    section = calibration["memorisation"]
    assert section["held_out_share"] <= 0.05
    assert section["copies_checked"] == len(indexed["images"])
    assert section["mirrored_caught"] == 1.0  # exactly invariant: a mirrored training image is the image itself
    info = json.loads((indexed["bundle"] / "index" / "index.json").read_text())
    assert info["extractor"]["invariance"] == {"mirror": True, "shift": 1, "blur_sigma": 1.0}
    index = ProvenanceIndex.load(indexed["bundle"])
    extractor = index.load_extractor()
    assert extractor.invariance == feats.INVARIANT
    copies = np.ascontiguousarray(indexed["images"][:8, :, ::-1])
    vectors = extractor.extract(copies)
    for layer in feats.LAYERS:
        threshold = index.memorisation_threshold(layer, 95)
        assert threshold == pytest.approx(section["thresholds"][layer])
    caught = memorisation.flagged(vectors, index.stored, section["thresholds"])
    assert caught.all()
