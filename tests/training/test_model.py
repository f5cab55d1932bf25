"""Model builder: shapes, layer names, normalisation inside the model, MAC counts."""
import numpy as np
import pytest

from training.model import build_model, count_macs, mac_breakdown, set_encoder_trainable


@pytest.mark.parametrize("decoder", ["fast", "pix2pix"])
def test_shapes_and_names(decoder):
    model = build_model(64, 4, decoder=decoder, encoder_weights=None)
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 64, 64, 4)
    names = {layer.name for layer in model.layers}
    assert {"image", "normalize", "encoder", "logits"} <= names
    assert model.name == f"roomfit_seg_{decoder}"
    out = model(np.full((1, 64, 64, 3), 255.0, np.float32)).numpy()
    assert np.isfinite(out).all()


def test_normalisation_to_minus_one_one():
    model = build_model(64, 3, encoder_weights=None)
    norm = model.get_layer("normalize")
    got = norm(np.array([[[[0.0, 127.5, 255.0]]]], np.float32)).numpy().ravel()
    assert got == pytest.approx([-1.0, 0.0, 1.0])


def test_fast_is_much_cheaper_than_pix2pix():
    fast = build_model(64, 10, decoder="fast", encoder_weights=None)
    p2p = build_model(64, 10, decoder="pix2pix", encoder_weights=None)
    assert count_macs(fast) * 5 < count_macs(p2p)
    assert fast.count_params() * 3 < p2p.count_params()


def _tiny_mac_model():
    """8×8×3 → encoder [conv 3×3 → 4] → depthwise 3×3 → separable 3×3 → 2 → transposed 2×2 stride 2 → pool → dense 5."""
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 3))
    encoder = keras.Model(inp, layers.Conv2D(4, 3, padding="same")(inp), name="encoder")
    x = encoder(inp)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.SeparableConv2D(2, 3, padding="same")(x)
    x = layers.Conv2DTranspose(2, 2, strides=2)(x)
    x = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, x)


@pytest.mark.parametrize("transpose_at_output, encoder, decoder", [
    # encoder 8·8·3·9·4; depthwise 8·8·4·9 = 2304; separable 2304 + 8·8·4·2 = 2816; dense 2·5 = 10;
    # transposed conv over its 8·8 input pixels 64·2·4·2 = 1024, or over its 16·16 output 256·2·4·2 = 4096
    (False, 6912, 2304 + 2816 + 1024 + 10),
    (True, 6912, 2304 + 2816 + 4096 + 10),
])
def test_mac_counts_by_hand(transpose_at_output, encoder, decoder):
    model = _tiny_mac_model()
    assert mac_breakdown(model, transpose_at_output) == {"encoder": encoder, "decoder": decoder}
    assert count_macs(model, transpose_at_output) == encoder + decoder


@pytest.mark.parametrize("kwargs, message", [
    ({"decoder": "unet"}, "unknown decoder"),
    ({"class_pool": "max"}, "unknown class pool"),
    ({"input_size": 50}, "multiple of 32"),
    ({"encoder_weights": "/nonexistent/w.h5"}, "not found"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        build_model(**{"input_size": 64, "classes": 3, **kwargs})


def test_fast_model_gives_one_class_per_photo():
    model = build_model(64, 5, encoder_weights=None)
    dense = model.get_layer("class_dense")
    dense.bias.assign([0.1, 0.4, 0.2, 0.3])  # an untrained head ties every class; break the ties
    x = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    logits = model(x).numpy()
    pred = logits.argmax(-1)
    for p in pred:
        assert len(set(np.unique(p)) - {0}) <= 1
    # foreground exactly where the best foreground logit beats background, whatever the class confidence
    assert np.array_equal(pred != 0, logits[..., 1:].max(-1) > logits[..., 0])


def test_masked_class_pool_averages_the_foreground_cells():
    """The class features of a photo are the mean over the cells the mask calls foreground, not over the photo."""
    import keras

    model = build_model(64, 4, encoder_weights=None, class_pool="masked")
    pool = model.get_layer("class_pool")
    features = np.zeros((1, 2, 2, 3), np.float32)
    features[0, 0, 0] = [4.0, 0.0, 0.0]  # the product's cell
    features[0, 1, 1] = [0.0, 8.0, 0.0]  # a background cell
    weights = np.zeros((1, 2, 2, 1), np.float32)
    weights[0, 0, 0] = 1.0
    got = keras.ops.convert_to_numpy(pool(features, weights))[0]
    assert got == pytest.approx([4.0, 0.0, 0.0], abs=0.01)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    assert model(x).shape == (2, 64, 64, 4)


def test_multilevel_class_pool_joins_the_stride_16_and_32_averages():
    """The class head sees both feature levels' photo averages: 576 + 960 inputs for MobileNetV2 alpha 1, and the
    stride-16 average is the one the gate uses (no second pooling)."""
    import keras

    model = build_model(64, 4, encoder_weights=None, class_pool="multilevel")
    assert model.get_layer("class_dense").kernel.shape == (576 + 960, 3)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    encoder = model.get_layer("encoder")
    *_, deep, semantic = encoder(model.get_layer("normalize")(x))
    pooled = keras.Model(model.input, model.get_layer("class_pool").output)(x).numpy()
    expected = np.concatenate([np.mean(deep, axis=(1, 2)), np.mean(semantic, axis=(1, 2))], axis=1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-4, atol=1e-5)
    assert model(x).shape == (2, 64, 64, 4)


def test_unfrozen_encoder_keeps_its_batch_norm_frozen():
    """Fine-tuning trains the encoder's weights but neither re-estimates nor trains its batch-norm statistics."""
    import keras

    model = build_model(64, 3, alpha=0.35, encoder_weights=None)
    encoder = model.get_layer("encoder")
    set_encoder_trainable(model, True)
    assert encoder.trainable and any(layer.trainable for layer in encoder.layers)
    norms = [layer for layer in encoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    encoder_convs = {id(v) for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)
                     for v in layer.trainable_weights}
    assert encoder_convs & {id(v) for v in model.trainable_weights}
    before = [n.moving_mean.numpy().copy() for n in norms]
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    probe = keras.Model(model.input, model.get_layer("encoder")(model.get_layer("normalize").output)[0])
    np.testing.assert_allclose(probe(x, training=True).numpy(), probe(x, training=False).numpy(), atol=1e-4)
    model(x, training=True)
    for b, n in zip(before, norms):
        np.testing.assert_array_equal(b, n.moving_mean.numpy())
    set_encoder_trainable(model, False)
    assert not {id(v) for v in encoder.weights} & {id(v) for v in model.trainable_weights}


def test_partial_unfreeze_trains_only_the_top_of_the_encoder():
    import keras

    model = build_model(64, 3, alpha=0.35, encoder_weights=None)
    encoder = model.get_layer("encoder")
    set_encoder_trainable(model, True, unfreeze_from="block_13_expand")
    names = [layer.name for layer in encoder.layers]
    first = names.index("block_13_expand")
    assert not any(layer.trainable for layer in encoder.layers[:first])
    trained = [layer.name for layer in encoder.layers[first:] if layer.trainable]
    assert "block_13_expand" in trained and "block_14_project" in trained
    assert not any(isinstance(encoder.get_layer(n), keras.layers.BatchNormalization) for n in trained)
    with pytest.raises(ValueError, match="no layer 'block_99'"):
        set_encoder_trainable(model, True, unfreeze_from="block_99")
